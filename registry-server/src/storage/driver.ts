// The narrow storage driver interface (after distribution's storagedriver.go). Paths are
// absolute, slash-separated and built only by paths.ts. A driver knows nothing of registries:
// no digests, no HTTP. The domain stores in src/registry/ sit on top of it.
import type { Writable } from "node:stream";

export interface FileInfo {
  path: string;
  size: number;
  /**
   * Last modification. A directory's must change whenever an entry is added or removed (the tag
   * list cache relies on it); a driver that cannot tell answers the current time.
   */
  modTime: Date;
  isDir: boolean;
  /**
   * Changes whenever the file's content may have changed (replaced, written, touched); equal
   * versions mean the same content. Undefined when the driver cannot tell (callers then read).
   */
  version?: string;
}

/**
 * A path that does not exist: an expected answer (a tag not yet pushed, a blob not yet stored)
 * that callers turn into a registry error or a `false`, so it carries no stack trace (capturing
 * one was 2% of a manifest PUT's CPU).
 */
export class PathNotFoundError extends Error {
  readonly path: string;

  constructor(path: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`path not found: ${path}`);
    Error.stackTraceLimit = limit;
    this.path = path;
    this.name = "PathNotFoundError";
  }
}

/** The volume is full (ENOSPC/EDQUOT): nothing was published. */
export class StorageFullError extends Error {
  constructor(readonly path: string) {
    super(`storage full while writing ${path}`);
    this.name = "StorageFullError";
  }
}

/** An append-only file being written, e.g. the data of an upload session. */
export interface FileWriter {
  /** Bytes in the file, including what was there before an append. */
  readonly size: number;
  /**
   * Accepts a chunk; resolves when the writer can take more (backpressure), with true when the
   * writer has copied the chunk and keeps no reference to it (the caller may then hand the
   * chunk's memory on: upload-hash.ts transfers it to its worker), false when it keeps the chunk.
   */
  write(chunk: Buffer): Promise<boolean>;
  /** Flushes and syncs to stable storage, then closes. */
  commit(): Promise<void>;
  /** Flushes and closes without syncing; the file can be appended to later. */
  close(): Promise<void>;
  /** Closes and removes the file. */
  cancel(): Promise<void>;
}

/** An open file whose bytes are sent to a stream (a blob download). */
export interface FileSource {
  readonly size: number;
  /**
   * Writes bytes [start, end] (inclusive) to `out`, with backpressure; resolves once `out` has
   * taken them all, or as soon as it closes (a client that went away). Does not end `out`.
   */
  sendTo(out: Writable, start: number, end: number): Promise<void>;
  close(): Promise<void>;
}

/** One file of a publication: small content to write, or a synced file to move, to `path`. */
export type PublishStep = { path: string; content: Buffer | string } | { path: string; from: string };

export interface StorageDriver {
  readonly name: string;
  /** Whole content of a small file. */
  getContent(path: string): Promise<Buffer>;
  /** Atomically and durably replaces the file's content (readers see old or new, never half). */
  putContent(path: string, content: Buffer | string): Promise<void>;
  /** Opens a file to send (downloads): PathNotFoundError now rather than once headers are out. */
  openSource(path: string): Promise<FileSource>;
  /** Opens a file for writing; with append it continues after the existing content. */
  writer(path: string, append: boolean): Promise<FileWriter>;
  stat(path: string): Promise<FileInfo>;
  /** Names of the direct children of a directory. */
  list(path: string): Promise<string[]>;
  /**
   * Puts several files in place in order, each atomically, replacing what is there. When it
   * resolves all are durable; after a crash, only a prefix of the steps can be in place (a tag
   * never without the manifest it points at).
   */
  publish(steps: PublishStep[]): Promise<void>;
  /** Atomically and durably moves a file into place, replacing any file there. */
  move(source: string, dest: string): Promise<void>;
  /** Sets the file's modification time to now (marks it as freshly referenced for garbage collection). */
  touch(path: string): Promise<void>;
  /** Removes a file or a whole directory tree. */
  delete(path: string): Promise<void>;
  /** Bytes free for new data on the volume, when the driver can tell. */
  freeBytes?(): Promise<number | undefined>;
}

export function isNotFound(err: unknown): err is PathNotFoundError {
  return err instanceof PathNotFoundError;
}

/** The promise's value, or undefined when the path it works on does not exist. */
export async function ifExists<T>(work: Promise<T>): Promise<T | undefined> {
  try {
    return await work;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Whether the path the work was done on exists (for work that answers nothing, e.g. touch or delete). */
export async function exists(work: Promise<unknown>): Promise<boolean> {
  return (await ifExists(work.then(() => true))) ?? false;
}
