// Upload sessions: data streams to <repo>/_uploads/<id> while it is hashed; the hash state
// stays in memory between PATCHes so completing a multi-GiB upload does not read it again. A
// session continued by another process (or after a restart) is rehashed from disk instead.
import { randomUUID } from "node:crypto";
import { RegistryError } from "../errors";
import { Digest } from "../reference";
import { FileInfo, ifExists, StorageDriver } from "../storage/driver";
import { paths } from "../storage/paths";
import { KeyedLock } from "../util/keyed-lock";
import { requestMemory, SMALL_BODY_BYTES } from "../util/memory-budget";
import { UploadHash } from "../util/upload-hash";
import { uploadReceived } from "../util/young-gc";
import type { BlobStore } from "./blobs";
import { storedDigest } from "./stored-digest";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** What a streaming upload holds at a time, about: three socket reads (see appendLocked). */
const STREAMING_BYTES = 192 << 10;
/** Hash states kept for open sessions; beyond this the oldest are dropped (and rehashed if used). */
const MAX_HASH_STATES = 4096;

interface HashState {
  hash: UploadHash;
  offset: number;
}

export interface AppendOptions {
  /** Start offset the client claims (Content-Range); must equal the current size. */
  start?: number;
}

/** Checks space before data is written; throws an OCI error when the write must be refused. */
export type CapacityCheck = (repo: string, incomingBytes: number | undefined) => Promise<void>;

export class UploadStore {
  private readonly hashStates = new Map<string, HashState>();
  private readonly lock = new KeyedLock();

  constructor(
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    private readonly capacity: CapacityCheck = async () => undefined,
  ) {}

  async create(repo: string): Promise<string> {
    const id = randomUUID();
    // Shared with garbage collection, which removes repository directories it finds empty.
    await this.blobs.maintenance.shared(async () => {
      const w = await this.driver.writer(paths.uploadData(repo, id), false);
      await w.close();
    });
    this.remember(repo, id, { hash: new UploadHash("sha256"), offset: 0 });
    return id;
  }

  /**
   * Current size of the session's data; BLOB_UPLOAD_UNKNOWN when there is no such session. A
   * PATCH in progress on the session (or one whose client just went away, still writing what it
   * received) is waited for, so the answer counts every byte the session will keep.
   */
  async size(repo: string, id: string): Promise<number> {
    return this.lock.run(sessionKey(repo, id), () => this.sizeLocked(repo, id));
  }

  private async sizeLocked(repo: string, id: string): Promise<number> {
    if (!UUID_RE.test(id)) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", undefined, { id: id.slice(0, 100) });
    const info = await ifExists(this.driver.stat(paths.uploadData(repo, id)));
    // A directory is a session registry:2 left: its state is not ours to resume.
    if (!info || info.isDir) throw new RegistryError("BLOB_UPLOAD_UNKNOWN", undefined, { id });
    return info.size;
  }

  /** Appends a chunk; answers the new size. */
  async append(repo: string, id: string, body: AsyncIterable<Buffer>, length: number | undefined, options: AppendOptions = {}): Promise<number> {
    return this.lock.run(sessionKey(repo, id), () => this.appendLocked(repo, id, body, length, options));
  }

  /** Appends the body; with `sync` the data file is also flushed to stable storage (completion). */
  private async appendLocked(repo: string, id: string, body: AsyncIterable<Buffer>, length: number | undefined, options: AppendOptions, sync = false): Promise<number> {
    const size = await this.sizeLocked(repo, id);
    if (options.start !== undefined && options.start !== size) {
      throw new RegistryError("RANGE_INVALID", `chunk starts at ${options.start} but the upload has ${size} bytes`, undefined, {
        headers: { Range: rangeHeader(size), "Docker-Upload-UUID": id },
      });
    }
    if (length !== 0) await this.capacity(repo, length);
    else if (!sync) return size;
    const key = sessionKey(repo, id);
    let state = this.hashStates.get(key);
    this.hashStates.delete(key);
    if (state && state.offset !== size) {
      state.hash.drop();
      state = undefined;
    }

    // Room for what the upload holds at a time while it streams (a chunk in hand, one being written,
    // what the socket has brought meanwhile), waited for in turn: uploads past what the budget
    // holds wait here, before they read their bodies, instead of each holding chunks at once.
    const floor = length !== undefined && length <= SMALL_BODY_BYTES ? 0 : await requestMemory.take(STREAMING_BYTES);
    try {
      return await this.stream(repo, id, body, state, sync);
    } finally {
      requestMemory.give(floor);
    }
  }

  /** Writes the body to the session's data (hashing it when `state` is kept); answers the new size. */
  private async stream(repo: string, id: string, body: AsyncIterable<Buffer>, state: HashState | undefined, sync: boolean): Promise<number> {
    const writer = await this.driver.writer(paths.uploadData(repo, id), true);
    let failure: unknown;
    try {
      for await (const chunk of body) {
        const length = chunk.length;
        // Written first: a chunk the writer copied can be handed to the hashing worker as it is.
        const copied = await writer.write(chunk);
        const hashing = state?.hash.update(chunk, copied);
        if (hashing) await hashing;
        uploadReceived(length);
      }
      state?.hash.settle();
    } catch (err) {
      failure = err;
    }
    // Keep what arrived, even from a client that went away: the session can resume from there.
    try {
      await (sync && failure === undefined ? writer.commit() : writer.close());
      // After a failed write the hash may include bytes the disk does not: rehash later instead.
      if (state && failure === undefined) {
        state.offset = writer.size;
        this.remember(repo, id, state);
      } else state?.hash.drop();
    } catch (err) {
      failure ??= err;
    }
    if (failure !== undefined) throw failure;
    return writer.size;
  }

  /**
   * Appends the final chunk, verifies the digest and publishes the blob into the global store,
   * linked into the repository. On a digest mismatch nothing is stored and the session is gone.
   */
  async complete(repo: string, id: string, digest: Digest, body: AsyncIterable<Buffer>, length: number | undefined, options: AppendOptions = {}): Promise<number> {
    return this.lock.run(sessionKey(repo, id), async () => {
      const size = await this.appendLocked(repo, id, body, length, options, true);
      const key = sessionKey(repo, id);
      const dataPath = paths.uploadData(repo, id);
      const state = this.hashStates.get(key);
      this.hashStates.delete(key);
      // The running hash, unless it does not cover the data (or its worker stopped): then the data is read again.
      let hex: string | undefined;
      if (state && state.offset === size && digest.algorithm === "sha256") hex = await state.hash.digest().catch(() => undefined);
      else state?.hash.drop();
      const actual = hex !== undefined ? Digest.parse(`sha256:${hex}`) : await storedDigest(this.driver, dataPath, digest);
      if (!actual.equals(digest)) {
        await this.driver.delete(dataPath).catch(() => undefined);
        throw new RegistryError("DIGEST_INVALID", "provided digest did not match uploaded content", { expected: digest.toString(), actual: actual.toString() });
      }
      // The session's file becomes the blob's data (or is dropped when the blob was there): the
      // session is gone with it, nothing to remove.
      await this.blobs.publish(dataPath, digest, size, repo);
      return size;
    });
  }

  /** Removes a session; waits for a PATCH or PUT in progress on it (same lock). */
  async cancel(repo: string, id: string): Promise<void> {
    await this.lock.run(sessionKey(repo, id), async () => {
      await this.sizeLocked(repo, id);
      this.hashStates.get(sessionKey(repo, id))?.hash.drop();
      this.hashStates.delete(sessionKey(repo, id));
      await this.driver.delete(paths.uploadData(repo, id));
    });
  }

  private remember(repo: string, id: string, state: HashState): void {
    const key = sessionKey(repo, id);
    this.hashStates.delete(key);
    this.hashStates.set(key, state);
    if (this.hashStates.size > MAX_HASH_STATES) {
      const oldest = this.hashStates.keys().next().value;
      if (oldest !== undefined) {
        this.hashStates.get(oldest)?.hash.drop();
        this.hashStates.delete(oldest);
      }
    }
  }
}

function sessionKey(repo: string, id: string): string {
  return `${repo}\0${id}`;
}

/** The `Range` header of upload responses: `0-<last byte>` (distribution answers 0-0 when empty). */
export function rangeHeader(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}

/** Size and last write of an upload session: our data file, or the data in a session directory registry:2 left. */
export async function uploadInfo(driver: StorageDriver, repo: string, id: string): Promise<FileInfo | undefined> {
  const entry = await ifExists(driver.stat(paths.uploadData(repo, id)));
  if (!entry?.isDir) return entry;
  return (await ifExists(driver.stat(paths.legacyUploadData(repo, id)))) ?? entry;
}
