// Filesystem storage driver. Every publishing write is atomic and durable: data goes to a
// temporary file under the same root (same filesystem, so rename is atomic), is fsynced, renamed
// into place, and the directory holding the new entry is fsynced too. A crash at any moment
// leaves the old file or the new one; temporaries live in <root>/.tmp and are never served.
import { closeSync, constants as fsConstants, openSync, readSync, statSync, utimesSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as nodePath from "node:path";
import { randomBytes } from "node:crypto";
import { AdaptiveWriter, SLOT_BYTES } from "./direct-io";
import { isFull, isMissing, isUnsupported } from "./errno";
import { FilesystemFileSource } from "./file-source";
import * as calls from "./fs-calls";
import { RecentPaths } from "./recent-paths";
import { FileInfo, FileSource, FileWriter, PathNotFoundError, PublishStep, StorageDriver, StorageFullError } from "./driver";
import { requestMemory } from "../util/memory-budget";

/** Where atomic writes stage their files, under the root (same file system, so renames are atomic). */
export const TMP_DIR = ".tmp";
/** Temporaries older than this are left over from a crash (no write takes that long to publish). */
export const STALE_TEMPORARY_MS = 60 * 60 * 1000;
/**
 * Writes are gathered into batches of this size before a writev, to keep syscalls few. Each
 * upload holds up to two batches of socket chunks, so this bounds memory per upload too. A/B of
 * 512 MiB pushes: 1 MiB and 512 KiB the same; 256 KiB (12 MiB less peak RSS with 8 parallel
 * pushes) cost 15% more CPU per GiB.
 */
const WRITE_BATCH_BYTES = 512 << 10;
/** getContent reads this much first; a file that fills it is read whole afterwards. */
const SMALL_READ_BYTES = 8192;
/** Directories remembered as existing (those added longest ago are crowded out first): 17 bytes each, 136 KiB. */
const KNOWN_DIRS = 8192;
/**
 * Paths (files and directories) found or written this recently are looked up synchronously
 * (stat, getContent of a small file, touch). A lookup whose path the kernel has cached takes
 * 1-3 µs on the calling thread; a thread-pool round trip costs the event loop 20-40 µs here
 * (waking a pool thread, then being woken), which was 30% of the main thread's time in a storm
 * of GETs by tag. What was found seconds ago is all but certainly still cached (the kernel
 * reclaims dentries and inodes least recently used first); anything else goes to the pool, where
 * a lookup that must read the disk blocks only a pool thread. 30 s and 32768 paths cover a push
 * of a few thousand images (the manifest PUTs touch the blobs pushed just before them: with 10 s
 * and 8192 paths, half of those touches in the bench went to the pool).
 */
const HOT_MS = 30_000;
const HOT_PATHS = 32768;

/**
 * File systems on a local disk or in memory, by statfs magic number, where a cached lookup never
 * waits on anything but the machine itself. Anywhere else (NFS, SMB, FUSE such as Docker Desktop's
 * file sharing, virtiofs, 9p) a synchronous lookup could hold the event loop, and with it every
 * request and health check, for as long as a server or the host takes to answer.
 */
const LOCAL_FILE_SYSTEMS: Record<number, string> = {
  0xef53: "ext2/3/4",
  0x58465342: "xfs",
  0x9123683e: "btrfs",
  0x2fc12fc1: "zfs",
  0xf2f52010: "f2fs",
  0x01021994: "tmpfs",
  0x794c7630: "overlayfs",
  0x858458f6: "ramfs",
};

/** Whether synchronous lookups of recent paths are safe on a file system of this statfs type. */
export function isLocalFileSystem(type: number): boolean {
  return LOCAL_FILE_SYSTEMS[type] !== undefined;
}
/** A large upload is datasynced in the background every so many bytes, overlapping writeback with the transfer. */
const BACKGROUND_SYNC_BYTES = 32 << 20;

/** Directories staged under .tmp for a file whose directories are missing: `dir` becomes `missing`. */
interface Stage {
  dir: string;
  /** Where the file is in the stage. */
  file: string;
  missing: string;
  /** `missing` was guessed from the directories known to exist (not looked up). */
  guessed: boolean;
}

/** A file written for a publication, in its stage when it has one. */
interface Temporary {
  file: string;
  stage?: Stage;
}

async function removeTemporary(temp: Temporary): Promise<void> {
  await fs.rm(temp.stage?.dir ?? temp.file, { recursive: true, force: true });
}

function utimesSyncIfExists(full: string, time: Date): boolean {
  try {
    utimesSync(full, time, time);
    return true;
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

/**
 * A small file's whole content read synchronously (for a hot path: see HOT_MS); null when it
 * does not exist, undefined when it is larger than one small read (then read it asynchronously).
 */
function readSmallSync(full: string): Buffer | null | undefined {
  let fd: number;
  try {
    fd = openSync(full, "r");
  } catch (err) {
    if (isMissing(err)) return null;
    throw err;
  }
  try {
    const first = Buffer.allocUnsafe(SMALL_READ_BYTES);
    const n = readSync(fd, first, 0, first.length, 0);
    return n < first.length ? Buffer.from(first.subarray(0, n)) : undefined;
  } finally {
    closeSync(fd);
  }
}

/** A file's whole content; undefined when it does not exist. */
async function readContent(full: string, closeHere: boolean): Promise<Buffer | undefined> {
  const fd = await calls.openIfExists(full, "r");
  if (fd === undefined) return undefined;
  try {
    // Links, tags and most manifests fit in one read: no fstat for the size (readFile's way).
    const first = Buffer.allocUnsafe(SMALL_READ_BYTES);
    const bytesRead = await calls.read(fd, first, 0, first.length, 0);
    if (bytesRead < first.length) return Buffer.from(first.subarray(0, bytesRead));
    // Larger: read to the end, whatever the size said (the file may grow meanwhile).
    let whole = Buffer.allocUnsafe(Math.max((await calls.fstat(fd)).size + 1, 2 * SMALL_READ_BYTES));
    first.copy(whole);
    let length = first.length;
    for (;;) {
      if (length === whole.length) whole = Buffer.concat([whole, Buffer.allocUnsafe(whole.length)]);
      const n = await calls.read(fd, whole, length, whole.length - length, length);
      if (n === 0) return whole.subarray(0, length);
      length += n;
    }
  } finally {
    await calls.closeFd(fd, closeHere);
  }
}

async function fsyncDir(dir: string, closeHere: boolean): Promise<void> {
  const fd = await calls.open(dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await calls.fsync(fd);
  } finally {
    await calls.closeFd(fd, closeHere);
  }
}

/**
 * Flags of a new temporary: each write returns once its data and the file's inode are on stable
 * storage (O_SYNC: what write then fsync guarantees, in one call instead of two).
 */
const SYNCED_NEW_FILE = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_SYNC;

export class FilesystemDriver implements StorageDriver {
  readonly name = "filesystem";
  private readonly tmpDir: string;
  private readonly dirSyncs = new Map<string, { running?: Promise<void>; queued?: Promise<void> }>();
  /** Directories seen to exist, so that placing a file in a new directory needs no stats. */
  private readonly knownDirs: RecentPaths;
  /** Paths found or written recently, looked up synchronously. */
  private readonly hot: RecentPaths;
  /**
   * A local file system (set by init): only there are recent paths looked up, and descriptors
   * closed, on the event loop.
   */
  private localFs = false;
  /** Large files are written and read past the page cache (direct-io.ts) until the file system refuses it. */
  private directWrites = true;
  /** Names of temporaries: this process's random prefix and a counter (unique without a random draw each). */
  private readonly tmpPrefix = `${process.pid}-${randomBytes(6).toString("hex")}-`;
  private tmpCount = 0;

  constructor(readonly root: string) {
    this.root = nodePath.resolve(root);
    this.tmpDir = nodePath.join(this.root, TMP_DIR);
    this.hot = new RecentPaths(this.root.length, HOT_MS, HOT_PATHS);
    this.knownDirs = new RecentPaths(this.root.length, Infinity, KNOWN_DIRS);
  }

  /** Creates the root; fails with a clear message when it is not a writable directory. */
  async init(): Promise<void> {
    await fs.mkdir(this.tmpDir, { recursive: true });
    await fs.access(this.root, fsConstants.W_OK | fsConstants.R_OK);
    this.localFs = isLocalFileSystem((await fs.statfs(this.root)).type);
  }

  /** Whether recent paths are looked up synchronously (a local file system). */
  get synchronousLookups(): boolean {
    return this.localFs;
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
    for (const d of toSync) await fsyncDir(d, this.localFs);
  }

  /**
   * Renames a synced file to `dest` and answers the directory that gained the new entry (the
   * caller syncs it). When directories on the way are missing they are built under .tmp with
   * the file inside and renamed into place in one step, so a crash never leaves an empty blob,
   * link or tag directory behind (an empty tag directory would list a tag that does not resolve).
   * When it fails, an `owned` file (a temporary) is removed wherever it was moved; another (an
   * upload's data) is left where it is, in .tmp at worst, which cleanTemporaries purges.
   */
  private async place(temp: Temporary, dest: string, owned: boolean): Promise<string> {
    const held: Temporary = { ...temp };
    try {
      return await this.placeHeld(held, dest);
    } catch (err) {
      if (owned) await removeTemporary(held);
      throw err;
    }
  }

  /** place(), keeping `held` up to date with where the file is. */
  private async placeHeld(held: Temporary, dest: string): Promise<string> {
    const parent = nodePath.dirname(dest);
    // A file goes straight into a directory known to exist (one call). An unknown directory
    // under a known one is most likely new (callers look for a blob, link or tag before they
    // write it, and every path found is remembered), so it is built staged at once (new
    // content was written in its stage already: see writeTemporary). A wrong guess is caught
    // by the renames below.
    // A staged file whose directory appeared meanwhile (an earlier step of the same publication
    // made it: a revision's link after its media type) goes straight in too; its stage goes.
    if (this.knownDirs.has(parent) || (!held.stage && this.deepestKnown(parent) === undefined)) {
      try {
        await calls.rename(held.file, dest);
        if (held.stage) await fs.rm(held.stage.dir, { recursive: true, force: true }).catch(() => undefined);
        this.rememberDir(parent);
        return parent;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
    // Which directories are missing: below the deepest one known to exist, as a guess (no
    // stats); a wrong guess fails the rename below and the next attempt looks. A writer that
    // loses a race to create the same directories also tries again.
    for (let attempt = 0; ; attempt++) {
      let stage = held.stage;
      if (!stage) {
        const guessed = attempt === 0 ? this.deepestKnown(parent) : undefined;
        const missing = guessed ?? (await this.lookUpMissing(parent));
        if (missing === undefined || attempt > 16) {
          await this.ensureDir(parent);
          await calls.rename(held.file, dest);
          return parent;
        }
        stage = await this.makeStage(missing, dest, guessed !== undefined);
        await calls.rename(held.file, stage.file);
        held.file = stage.file;
        held.stage = stage;
      }
      try {
        // Replaces nothing but, at most, an empty directory another writer has just made. The
        // staged directories are not synced one by one: on a journaling file system (ext4, xfs)
        // syncing the directory that gains the new entry commits every earlier metadata change.
        await calls.rename(stage.dir, stage.missing);
        const gained = nodePath.dirname(stage.missing);
        for (let d = parent; d.length >= gained.length; d = nodePath.dirname(d)) this.rememberDir(d);
        return gained;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT" && stage.guessed) {
          // A directory known to exist is gone (garbage collection removed a repository).
          this.knownDirs.forget(nodePath.dirname(stage.missing));
        } else if (code !== "ENOTEMPTY" && code !== "EEXIST") {
          throw err;
        }
        // Someone created that directory meanwhile (or the guess was wrong): move the file out
        // of the stage and look again.
        const file = this.tmpName();
        await calls.rename(stage.file, file);
        held.file = file;
        held.stage = undefined;
        await fs.rm(stage.dir, { recursive: true, force: true });
      }
    }
  }

  /** The topmost missing directory on the way to `dir`, looked up (stats, bottom up); undefined when `dir` exists. */
  private async lookUpMissing(dir: string): Promise<string | undefined> {
    let missing: string | undefined;
    for (let d = dir; d.length > this.root.length; d = nodePath.dirname(d)) {
      if (await calls.statIfExists(d)) {
        this.rememberDir(d);
        break;
      }
      missing = d;
    }
    return missing;
  }

  /** A new stage under .tmp holding the directories from `missing` down to `dest`'s (empty). */
  private async makeStage(missing: string, dest: string, guessed: boolean): Promise<Stage> {
    const dir = this.tmpName();
    const file = nodePath.join(dir, nodePath.relative(missing, dest));
    const deepest = nodePath.dirname(file);
    try {
      // Top down: each mkdir succeeds at the first try.
      for (let d = dir; ; d = file.slice(0, file.indexOf("/", d.length + 1))) {
        await calls.mkdir(d);
        if (d.length >= deepest.length) return { dir, file, missing, guessed };
      }
    } catch (err) {
      await fs.rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * The topmost directory missing on the way to `dir` if the deepest known directory above it
   * is the last that exists (place()'s guess); undefined when no directory above it is known.
   */
  private deepestKnown(dir: string): string | undefined {
    let missing = dir;
    for (let up = nodePath.dirname(missing); up.length > this.root.length; up = nodePath.dirname(missing)) {
      if (this.knownDirs.has(up)) return missing;
      missing = up;
    }
    return undefined;
  }

  /** Whether `full` was found or written less than HOT_MS ago. */
  private isHot(full: string): boolean {
    return this.localFs && this.hot.has(full);
  }

  private markHot(full: string): void {
    if (this.localFs) this.hot.add(full);
  }

  /** Notes a directory that exists (a hint for place(); a wrong one costs a retry). */
  private rememberDir(dir: string): void {
    this.knownDirs.add(dir);
  }

  /**
   * Writes content for `dest` to a new temporary file and syncs it. When `dest`'s directory is
   * probably new, the file is written in a stage of the missing directories at once, so that
   * placing it is one rename (a PUT of a new manifest by a new tag makes three such files).
   */
  private async writeTemporary(content: Buffer | string, path: string, dest: string): Promise<Temporary> {
    const parent = nodePath.dirname(dest);
    const missing = this.knownDirs.has(parent) ? undefined : this.deepestKnown(parent);
    let temp: Temporary = { file: this.tmpName() };
    try {
      if (missing !== undefined) {
        const stage = await this.makeStage(missing, dest, true);
        temp = { file: stage.file, stage };
      }
      const fd = await calls.open(temp.file, SYNCED_NEW_FILE);
      try {
        const data = typeof content === "string" ? Buffer.from(content) : content;
        await calls.writeAll(fd, data, 0);
        // No write, no sync: an empty file's inode still has to reach the disk.
        if (data.length === 0) await calls.fsync(fd);
      } finally {
        await calls.closeFd(fd, this.localFs);
      }
      return temp;
    } catch (err) {
      await removeTemporary(temp);
      if (isFull(err)) throw new StorageFullError(path);
      throw err;
    }
  }

  /**
   * Contents are written and synced in parallel, then every file is renamed into place in
   * order, then the directories that gained entries are synced in parallel: two waits for the
   * disk however many files. Renames reach the journal in order, so after a crash a prefix of
   * the steps is in place.
   */
  async publish(steps: PublishStep[]): Promise<void> {
    const targets = steps.map((s) => this.full(s.path));
    const sources = steps.map((s) => ("from" in s ? this.full(s.from) : undefined));
    for (const [i, s] of steps.entries()) {
      if ("from" in s && !(await calls.statIfExists(sources[i] ?? ""))) throw new PathNotFoundError(s.from);
    }
    const files = await Promise.allSettled(
      steps.map((s, i): Promise<Temporary> => ("content" in s ? this.writeTemporary(s.content, s.path, targets[i]) : Promise.resolve({ file: sources[i] ?? "" }))),
    );
    const failed = files.find((f): f is PromiseRejectedResult => f.status === "rejected");
    const written = files.map((f, i) => (f.status === "fulfilled" && "content" in steps[i] ? f.value : undefined));
    if (failed) {
      await Promise.all(written.map((t) => t && removeTemporary(t)));
      throw failed.reason;
    }
    const dirs = new Set<string>();
    let placed = 0;
    try {
      for (; placed < steps.length; placed++) {
        dirs.add(await this.place((files[placed] as PromiseFulfilledResult<Temporary>).value, targets[placed], "content" in steps[placed]));
      }
    } catch (err) {
      // The step that failed has cleaned up after itself.
      await Promise.all(written.slice(placed + 1).map((t) => t && removeTemporary(t)));
      if (isFull(err)) throw new StorageFullError(steps[placed].path);
      throw err;
    }
    await Promise.all([...dirs].map((d) => this.syncDir(d)));
    for (const t of targets) this.markHot(t);
  }

  /**
   * Syncs a directory, sharing the work between concurrent publications into it (group
   * commit): a caller joins a sync that has not started yet, since it will cover its rename;
   * one that is already running may predate the rename, so one more is queued behind it.
   */
  private syncDir(dir: string): Promise<void> {
    let entry = this.dirSyncs.get(dir);
    if (!entry) {
      entry = {};
      this.dirSyncs.set(dir, entry);
    }
    if (entry.queued) return entry.queued;
    const e = entry;
    const start = (): Promise<void> => {
      const run = fsyncDir(dir, this.localFs).finally(() => {
        if (e.running === run) e.running = undefined;
        if (!e.running && !e.queued && this.dirSyncs.get(dir) === e) this.dirSyncs.delete(dir);
      });
      e.running = run;
      return run;
    };
    if (!e.running) return start();
    e.queued = e.running
      .catch(() => undefined)
      .then(() => {
        e.queued = undefined;
        return start();
      });
    return e.queued;
  }

  private tmpName(): string {
    return `${this.tmpDir}/${this.tmpPrefix}${(this.tmpCount++).toString(36)}`;
  }

  /** The file opened for direct reads; undefined when the file system refuses O_DIRECT (then never tried again). */
  private async openDirect(path: string): Promise<fs.FileHandle | undefined> {
    try {
      return await fs.open(this.full(path), fsConstants.O_RDONLY | fsConstants.O_DIRECT);
    } catch (err) {
      if (!isUnsupported(err)) throw err;
      this.directWrites = false;
      return undefined;
    }
  }

  private async openForReading(path: string): Promise<fs.FileHandle> {
    try {
      return await fs.open(this.full(path), "r");
    } catch (err) {
      if (isMissing(err)) throw new PathNotFoundError(path);
      throw err;
    }
  }

  async getContent(path: string): Promise<Buffer> {
    const full = this.full(path);
    if (this.isHot(full)) {
      const small = readSmallSync(full);
      if (small === null) {
        this.hot.forget(full);
        throw new PathNotFoundError(path);
      }
      if (small) return small;
    }
    const content = await readContent(full, this.localFs);
    if (!content) throw new PathNotFoundError(path);
    this.markHot(full);
    return content;
  }

  async putContent(path: string, content: Buffer | string): Promise<void> {
    await this.publish([{ path, content }]);
  }

  async openSource(path: string): Promise<FileSource> {
    const fh = await this.openForReading(path);
    try {
      const { size } = await fh.stat();
      // Large files are read past the page cache, as they were written (direct-io.ts).
      const direct = this.directWrites && size >= SLOT_BYTES ? await this.openDirect(path) : undefined;
      return new FilesystemFileSource(path, fh, size, direct, () => {
        this.directWrites = false;
      });
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async writer(path: string, append: boolean): Promise<FileWriter> {
    const full = this.full(path);
    // Appending continues at the file's size with positioned writes, not O_APPEND: direct writes
    // run several at once, and a buffered one (a refused direct write, the tail) must land at its
    // own offset whichever of them has finished.
    const flags = append ? fsConstants.O_WRONLY | fsConstants.O_CREAT : "w";
    // What a writer writes is published later by move(), which makes it durable; no syncs here.
    // Its directory (a repository's _uploads) is made when not known to exist, and again when the
    // open finds it gone: a known one costs no call (mkdir -p of an existing directory is two).
    const dir = nodePath.dirname(full);
    let fh: fs.FileHandle | undefined;
    if (this.knownDirs.has(dir)) fh = await fs.open(full, flags).catch((err: unknown) => (isMissing(err) ? undefined : Promise.reject(err)));
    if (!fh) {
      await fs.mkdir(dir, { recursive: true });
      fh = await fs.open(full, flags);
    }
    this.rememberDir(dir);
    const size = append ? (await fh.stat()).size : 0;
    const target = {
      path,
      full,
      enabled: () => this.directWrites,
      unsupported: () => {
        this.directWrites = false;
      },
    };
    return new AdaptiveWriter(target, fh, size, (handle, start) => new FilesystemFileWriter(path, full, handle, start));
  }

  async stat(path: string): Promise<FileInfo> {
    const full = this.full(path);
    const st = this.isHot(full) ? statSync(full, { throwIfNoEntry: false }) : await calls.statIfExists(full);
    if (!st) {
      this.hot.forget(full);
      throw new PathNotFoundError(path);
    }
    const isDir = st.isDirectory();
    this.markHot(full);
    this.rememberDir(isDir ? full : nodePath.dirname(full));
    // A replacement is a new inode (files are renamed into place) and any change moves ctime.
    return { path, size: st.size, modTime: st.mtime, isDir, version: `${st.ino}:${st.ctimeMs}:${st.size}` };
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
    await this.publish([{ path: dest, from: source }]);
  }

  async touch(path: string): Promise<void> {
    const full = this.full(path);
    // A recently found file's inode is in memory: setting its times there is a lookup and a store.
    if (!(this.isHot(full) ? utimesSyncIfExists(full, new Date()) : await calls.utimesIfExists(full, new Date()))) {
      this.hot.forget(full);
      throw new PathNotFoundError(path);
    }
    this.rememberDir(nodePath.dirname(full));
    this.markHot(full);
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

/** Background datasyncs running at once, process-wide: each holds a libuv thread for a while. */
const MAX_BACKGROUND_SYNCS = 2;
let backgroundSyncs = 0;

/**
 * Starts a datasync of a large file being written (its final fsync then has little left to
 * flush); undefined when enough are running already, so that writes keep threads to run on.
 */
function startBackgroundSync(fh: fs.FileHandle): Promise<void> | undefined {
  if (backgroundSyncs >= MAX_BACKGROUND_SYNCS) return undefined;
  backgroundSyncs++;
  return fh
    .datasync()
    .catch(() => undefined)
    .finally(() => {
      backgroundSyncs--;
    });
}

/**
 * Appends to a file: chunks are gathered and written with one writev per WRITE_BATCH_BYTES while
 * the next batch fills (one write in flight), and a background datasync starts every
 * BACKGROUND_SYNC_BYTES, so writeback overlaps a large transfer and the final fsync is short.
 * A batch counts against the request memory budget (memory-budget.ts) until it is written.
 * Measured and dropped: copying chunks into reused buffers to spare the GC (more system time),
 * and carrying unsynced bytes across an upload's PATCHes (syncs that outlive their request
 * slowed what came next).
 */
class FilesystemFileWriter implements FileWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Bytes of `pending` taken from the request memory budget (given back once written). */
  private pendingBudget = 0;
  /** Bytes the kernel has accepted. */
  private written: number;
  /** The batch being written while the next one fills. */
  private inFlight: Promise<void> | undefined;
  private inFlightBytes = 0;
  private syncing: Promise<void> | undefined;
  private unsynced = 0;
  private failure: unknown;
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
    return this.written + this.inFlightBytes + this.pendingBytes;
  }

  async write(chunk: Buffer): Promise<boolean> {
    if (this.failure !== undefined) throw this.failure;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    // A batch fills only while the process's request memory budget has room.
    const full = this.pendingBytes >= WRITE_BATCH_BYTES;
    if (!full && requestMemory.tryTake(chunk.length)) {
      this.pendingBudget += chunk.length;
      return false;
    }
    await this.inFlight;
    if (this.failure !== undefined) throw this.failure;
    this.startFlush();
    if (!full) {
      // Refused room: the write is waited for, so the upload holds no more than this chunk (and
      // what the socket has brought meanwhile) until it is done.
      await this.inFlight;
      if (this.failure !== undefined) throw this.failure;
    }
    return false;
  }

  private startFlush(): void {
    if (this.pendingBytes === 0) return;
    const batch = this.pending;
    const bytes = this.pendingBytes;
    const budget = this.pendingBudget;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingBudget = 0;
    this.inFlightBytes = bytes;
    this.inFlight = this.writeBatch(batch, bytes).finally(() => requestMemory.give(budget)).then(
      () => {
        this.written += bytes;
        this.inFlightBytes = 0;
        this.unsynced += bytes;
        if (this.unsynced >= BACKGROUND_SYNC_BYTES && !this.syncing) {
          const sync = startBackgroundSync(this.fh);
          if (sync) {
            this.unsynced = 0;
            this.syncing = sync.finally(() => {
              this.syncing = undefined;
            });
          }
        }
      },
      (err: unknown) => {
        this.inFlightBytes = 0;
        this.failure = isFull(err) ? new StorageFullError(this.path) : err;
      },
    );
  }

  /** Writes a batch at the end of what is written (batches go one at a time). */
  private async writeBatch(batch: Buffer[], bytes: number): Promise<void> {
    const position = this.written;
    let { bytesWritten } = await this.fh.writev(batch, position);
    // writev may write less than asked (rare, e.g. signals); finish the remainder.
    while (bytesWritten < bytes) {
      const rest = Buffer.concat(batch).subarray(bytesWritten);
      bytesWritten += (await this.fh.write(rest, 0, rest.length, position + bytesWritten)).bytesWritten;
    }
  }

  /** Waits until everything accepted so far is written (or has failed). */
  private async drain(): Promise<void> {
    await this.inFlight;
    if (this.failure === undefined && this.pendingBytes > 0) {
      this.startFlush();
      await this.inFlight;
    }
    await this.syncing;
    if (this.failure !== undefined) throw this.failure;
  }

  async commit(): Promise<void> {
    try {
      await this.drain();
      await this.fh.sync();
    } finally {
      await this.closeHandle();
    }
  }

  async close(): Promise<void> {
    try {
      await this.drain();
    } finally {
      await this.closeHandle();
    }
  }

  async cancel(): Promise<void> {
    this.pending = [];
    this.pendingBytes = 0;
    requestMemory.give(this.pendingBudget);
    this.pendingBudget = 0;
    await this.inFlight;
    await this.syncing;
    await this.closeHandle();
    await fs.rm(this.full, { force: true });
  }

  private async closeHandle(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}
