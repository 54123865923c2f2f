// Filesystem storage driver. Every publishing write is atomic and durable: data goes to a
// temporary file under the same root (same filesystem, so rename is atomic), is fsynced, renamed
// into place, and the directory holding the new entry is fsynced too. A crash at any moment
// leaves the old file or the new one; temporaries live in <root>/.tmp and are never served.
import { constants as fsConstants } from "node:fs";
import * as fs from "node:fs/promises";
import * as nodePath from "node:path";
import { randomBytes } from "node:crypto";
import type { Readable } from "node:stream";
import { FileInfo, FileWriter, PathNotFoundError, StorageDriver, StorageFullError } from "./driver";

const TMP_DIR = ".tmp";
/** Writes are gathered into batches of this size before a writev, to keep syscalls few. */
const WRITE_BATCH_BYTES = 1 << 20;

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

function isFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOSPC" || code === "EDQUOT";
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class FilesystemDriver implements StorageDriver {
  readonly name = "filesystem";
  private readonly tmpDir: string;

  constructor(readonly root: string) {
    this.root = nodePath.resolve(root);
    this.tmpDir = nodePath.join(this.root, TMP_DIR);
  }

  /** Creates the root; fails with a clear message when it is not a writable directory. */
  async init(): Promise<void> {
    await fs.mkdir(this.tmpDir, { recursive: true });
    await fs.access(this.root, fsConstants.W_OK | fsConstants.R_OK);
  }

  /** Removes temporaries older than maxAgeMs left by a crashed process. */
  async cleanTemporaries(maxAgeMs: number): Promise<number> {
    let removed = 0;
    const now = Date.now();
    for (const entry of await fs.readdir(this.tmpDir).catch(() => [] as string[])) {
      const p = nodePath.join(this.tmpDir, entry);
      const st = await fs.stat(p).catch(() => undefined);
      if (st && now - st.mtimeMs > maxAgeMs) {
        await fs.rm(p, { force: true, recursive: true });
        removed++;
      }
    }
    return removed;
  }

  private full(path: string): string {
    if (!path.startsWith("/") || path.includes("/../") || path.endsWith("/..") || path.includes("\0")) {
      throw new Error(`invalid storage path ${JSON.stringify(path)}`);
    }
    return nodePath.join(this.root, path);
  }

  /** mkdir -p that also syncs each parent of a newly created directory. */
  private async ensureDir(dir: string): Promise<void> {
    const first = await fs.mkdir(dir, { recursive: true });
    if (first === undefined) return;
    const toSync: string[] = [];
    for (let d = dir; ; d = nodePath.dirname(d)) {
      toSync.push(nodePath.dirname(d));
      if (d === first || d.length <= this.root.length) break;
    }
    for (const d of toSync) await fsyncDir(d);
  }

  /**
   * Renames a synced file to `dest`, durably. When directories on the way are missing they are
   * built under .tmp with the file inside and renamed into place in one step, so a crash never
   * leaves an empty blob, link or tag directory behind (an empty tag directory would list a tag
   * that does not resolve).
   */
  private async place(file: string, dest: string): Promise<void> {
    const parent = nodePath.dirname(dest);
    // A writer that loses a race to create the same directories tries again one level lower.
    for (let attempt = 0; ; attempt++) {
      let missing: string | undefined;
      for (let d = parent; d.length > this.root.length; d = nodePath.dirname(d)) {
        if (await fs.stat(d).then(() => true, () => false)) break;
        missing = d;
      }
      if (missing === undefined || attempt > 16) {
        await this.ensureDir(parent);
        await fs.rename(file, dest);
        await fsyncDir(parent);
        return;
      }
      const stage = this.tmpName();
      const staged = nodePath.join(stage, nodePath.relative(missing, dest));
      await fs.mkdir(nodePath.dirname(staged), { recursive: true });
      await fs.rename(file, staged);
      for (let d = nodePath.dirname(staged); d.length >= stage.length; d = nodePath.dirname(d)) await fsyncDir(d);
      try {
        // Replaces nothing but, at most, an empty directory another writer has just made.
        await fs.rename(stage, missing);
        await fsyncDir(nodePath.dirname(missing));
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "ENOTEMPTY" && code !== "EEXIST") throw err;
        // Someone created that directory meanwhile: move the file out of the stage and retry.
        const next = this.tmpName();
        await fs.rename(staged, next);
        await fs.rm(stage, { recursive: true, force: true });
        file = next;
      }
    }
  }

  private tmpName(): string {
    return nodePath.join(this.tmpDir, `${Date.now()}-${randomBytes(8).toString("hex")}`);
  }

  async getContent(path: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.full(path));
    } catch (err) {
      if (isMissing(err)) throw new PathNotFoundError(path);
      throw err;
    }
  }

  async putContent(path: string, content: Buffer | string): Promise<void> {
    const dest = this.full(path);
    const tmp = this.tmpName();
    try {
      const fh = await fs.open(tmp, "w");
      try {
        await fh.writeFile(content);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await this.place(tmp, dest);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      if (isFull(err)) throw new StorageFullError(path);
      throw err;
    }
  }

  async reader(path: string, offset = 0, end?: number): Promise<Readable> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(this.full(path), "r");
    } catch (err) {
      if (isMissing(err)) throw new PathNotFoundError(path);
      throw err;
    }
    // The stream owns the handle and closes it when it ends or is destroyed.
    return fh.createReadStream({ start: offset, end, highWaterMark: 256 * 1024 });
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    const full = this.full(path);
    await this.ensureDir(nodePath.dirname(full));
    const fh = await fs.open(full, append ? "a" : "w");
    const size = append ? (await fh.stat()).size : 0;
    return new FilesystemFileWriter(path, full, fh, size);
  }

  async stat(path: string): Promise<FileInfo> {
    try {
      const st = await fs.stat(this.full(path));
      return { path, size: st.size, modTime: st.mtime, isDir: st.isDirectory() };
    } catch (err) {
      if (isMissing(err)) throw new PathNotFoundError(path);
      throw err;
    }
  }

  async list(path: string): Promise<string[]> {
    try {
      const names = await fs.readdir(this.full(path));
      return names.filter((n) => !n.startsWith("."));
    } catch (err) {
      if (isMissing(err)) throw new PathNotFoundError(path);
      throw err;
    }
  }

  async move(source: string, dest: string): Promise<void> {
    const from = this.full(source);
    const to = this.full(dest);
    try {
      await fs.access(from);
    } catch (err) {
      if (isMissing(err)) throw new PathNotFoundError(source);
      throw err;
    }
    await this.place(from, to);
  }

  async touch(path: string): Promise<void> {
    const now = new Date();
    try {
      await fs.utimes(this.full(path), now, now);
    } catch (err) {
      if (isMissing(err)) throw new PathNotFoundError(path);
      throw err;
    }
  }

  async delete(path: string): Promise<void> {
    const full = this.full(path);
    try {
      await fs.lstat(full);
    } catch (err) {
      if (isMissing(err)) throw new PathNotFoundError(path);
      throw err;
    }
    await fs.rm(full, { recursive: true, force: true });
  }

  async freeBytes(): Promise<number | undefined> {
    const st = await fs.statfs(this.root);
    return st.bavail * st.bsize;
  }
}

class FilesystemFileWriter implements FileWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written: number;
  private closed = false;

  constructor(
    private readonly path: string,
    private readonly full: string,
    private readonly fh: fs.FileHandle,
    startSize: number,
  ) {
    this.written = startSize;
  }

  get size(): number {
    return this.written + this.pendingBytes;
  }

  async write(chunk: Buffer): Promise<void> {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= WRITE_BATCH_BYTES) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pendingBytes === 0) return;
    const batch = this.pending;
    const bytes = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    try {
      let { bytesWritten } = await this.fh.writev(batch);
      // writev may write less than asked (rare, e.g. signals); finish the remainder.
      while (bytesWritten < bytes) {
        const rest = Buffer.concat(batch).subarray(bytesWritten);
        bytesWritten += (await this.fh.write(rest)).bytesWritten;
      }
      this.written += bytes;
    } catch (err) {
      if (isFull(err)) throw new StorageFullError(this.path);
      throw err;
    }
  }

  async commit(): Promise<void> {
    try {
      await this.flush();
      await this.fh.sync();
    } finally {
      await this.closeHandle();
    }
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.closeHandle();
    }
  }

  async cancel(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    await this.closeHandle();
    await fs.rm(this.full, { force: true });
  }

  private async closeHandle(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}
