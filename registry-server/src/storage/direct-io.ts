// Direct I/O for large uploads: data goes from the socket into aligned staging buffers and from
// there to the disk with O_DIRECT, past the page cache. A buffered write copies every byte into
// newly allocated page-cache pages; on VMs whose free memory is handed back to the host (balloon
// free-page reporting, as on the machines this is measured on) that first touch is what limits an
// upload: `dd` of 512 MiB into new files ran at ~400 MB/s buffered and 1.5-1.9 GB/s with
// oflag=direct (synced). It also keeps multi-GiB layers from pushing everything else out of
// the page cache. What cannot go direct (a tail shorter than a block, an unaligned start, a file
// system that refuses O_DIRECT) is written buffered; the final fsync covers both.
import { constants as fsConstants } from "node:fs";
import * as fs from "node:fs/promises";
import { FileWriter, StorageFullError } from "./driver";
import { IdleRelease } from "../util/idle-release";
import { requestMemory } from "../util/memory-budget";
import { isFull, isUnsupported } from "./errno";

// The one WebAssembly API used here (the DOM typings that declare it are not loaded).
declare const WebAssembly: { Memory: new (size: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };

/** O_DIRECT needs buffers, file offsets and lengths aligned to the device's logical block; 4 KiB covers them all. */
export const DIRECT_ALIGN = 4096;
/**
 * Size of a staging buffer: one direct write or read. 512 KiB direct writes ran as fast as 1 MiB
 * ones here (2.3 GB/s synced), reads two at a time too (1.15-1.2 GB/s), for half the memory.
 */
export const SLOT_BYTES = 512 << 10;
/** Slots per arena (one WebAssembly memory, whose base is page aligned). */
const SLOTS_PER_ARENA = 8;
/**
 * Slots of an upload that is the only one writing direct (others get two): one filling, three
 * being written at once. The disk's latency here jumps from one moment to the next (synced writes
 * at 300 MB/s to 2 GB/s), and one write in flight stalled the upload each time: A/B of 8 rounds,
 * one 256 MiB push 700 -> 807 MB/s, chunked 665 -> 771; eight at once unchanged.
 */
const SLOTS_PER_UPLOAD = 4;
/** Arenas at most: 16 MiB of staging buffers for all uploads and downloads together (two to four per upload, up to four per download). */
const MAX_ARENAS = 4;

/**
 * Page-aligned buffers for direct writes and reads. Node has no aligned allocation; the memory of a
 * WebAssembly instance is page aligned, so arenas are WebAssembly memories cut into slots. An
 * arena is never grown (that would detach the buffers in use) and is allocated only when every
 * slot is taken; when all arenas are taken, callers write buffered instead.
 */
export class SlotPool {
  private free: Buffer[] = [];
  private arenas = 0;
  /** Uploads holding slots (takeForUpload). */
  private uploads = 0;
  /** Holders of extra slots: each call gives back one it does not need, or undefined. */
  private readonly lenders = new Set<() => Buffer | undefined>();
  /** Arenas whose slots are all free are let go after a quiet spell (see idle-release.ts). */
  private readonly idleRelease: IdleRelease;

  constructor(
    private maxArenas = MAX_ARENAS,
    private readonly allocate = (pages: number): { buffer: ArrayBuffer } => new WebAssembly.Memory({ initial: pages, maximum: pages }),
    idleMs?: number,
  ) {
    this.idleRelease = new IdleRelease(() => this.releaseFreeArenas(), idleMs);
  }

  /** Two slots (double buffering), or undefined when the pool is exhausted. */
  takePair(): [Buffer, Buffer] | undefined {
    this.idleRelease.touch();
    // Extra slots an upload holds while idle are taken back before a new arena is allocated.
    for (const lender of this.lenders) {
      if (this.free.length >= 2) break;
      for (let slot = lender(); slot; slot = this.free.length < 2 ? lender() : undefined) this.free.push(slot);
    }
    if (this.free.length < 2 && !this.grow()) return undefined;
    const a = this.free.pop() as Buffer;
    const b = this.free.pop() as Buffer;
    return [a, b];
  }

  /**
   * Slots for one upload: two, and up to `max` for an upload that is the only one holding slots
   * (extra ones only when free already: no arena is allocated for them). Undefined when the
   * pool is exhausted. Give them back with giveAll.
   */
  takeForUpload(max: number): Buffer[] | undefined {
    const alone = this.uploads === 0;
    const pair = this.takePair();
    if (!pair) return undefined;
    const slots: Buffer[] = pair;
    while (alone && slots.length < max && this.free.length > 0) slots.push(this.free.pop() as Buffer);
    this.uploads++;
    return slots;
  }

  /** Registers (holds) or forgets a holder of extra slots that can give some back. */
  lender(lend: () => Buffer | undefined, holds: boolean): void {
    if (holds) this.lenders.add(lend);
    else this.lenders.delete(lend);
  }

  /** Gives back what takeForUpload gave. */
  giveAll(slots: Buffer[]): void {
    this.uploads = Math.max(0, this.uploads - 1);
    for (const slot of slots) this.give(slot);
  }

  /** Slots that can be taken now: free ones, and those of arenas not allocated yet. */
  get idle(): number {
    return this.free.length + (this.maxArenas - this.arenas) * SLOTS_PER_ARENA;
  }

  /** Arenas allocated (tests). */
  get allocated(): number {
    return this.arenas;
  }

  takeOne(): Buffer | undefined {
    this.idleRelease.touch();
    if (this.free.length === 0 && !this.grow()) return undefined;
    return this.free.pop();
  }

  give(slot: Buffer): void {
    this.free.push(slot);
    this.idleRelease.touch();
  }

  /** Drops every arena whose slots are all free (the GC then returns its memory); answers whether any was. */
  releaseFreeArenas(): boolean {
    const byArena = new Map<ArrayBufferLike, number>();
    for (const slot of this.free) byArena.set(slot.buffer, (byArena.get(slot.buffer) ?? 0) + 1);
    const unused = new Set([...byArena].filter(([, n]) => n === SLOTS_PER_ARENA).map(([arena]) => arena));
    if (unused.size === 0) return false;
    this.free = this.free.filter((slot) => !unused.has(slot.buffer));
    this.arenas -= unused.size;
    return true;
  }

  private grow(): boolean {
    if (this.arenas >= this.maxArenas) return false;
    const pages = (SLOTS_PER_ARENA * SLOT_BYTES) / 65536;
    let memory: { buffer: ArrayBuffer };
    try {
      memory = this.allocate(pages);
    } catch {
      // No address space for it (V8 reserves guard regions around a WebAssembly memory; a
      // `ulimit -v` or strict overcommit can refuse): make do with the arenas there are.
      this.maxArenas = this.arenas;
      return false;
    }
    this.arenas++;
    for (let i = 0; i < SLOTS_PER_ARENA; i++) this.free.push(Buffer.from(memory.buffer, i * SLOT_BYTES, SLOT_BYTES));
    return true;
  }
}

export const slotPool = new SlotPool();

/** Where direct writes are tried, and how: the driver's side of a DirectFileWriter. */
export interface DirectTarget {
  /** The file's path under the storage root (for errors) and on disk. */
  path: string;
  full: string;
  /** Still worth trying (false once the file system refused O_DIRECT). */
  enabled(): boolean;
  /** The file system refused a direct write: buffered from now on. */
  unsupported(): void;
}

/**
 * A writer for data of unknown length (an upload's PATCH or PUT): the first SLOT_BYTES are held
 * as they arrive; a file that ends before that is written buffered in one go (small blobs), a
 * longer one continues with direct writes when the file ends on a block boundary and staging buffers
 * are free, and buffered (`fallback`) otherwise. What is held counts against the request memory
 * budget; when it has no room, the choice is made at once.
 */
export class AdaptiveWriter implements FileWriter {
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** Bytes of `held` taken from the request memory budget. */
  private budgeted = 0;
  private inner: FileWriter | undefined;

  constructor(
    private readonly target: DirectTarget,
    /** The file opened for buffered appending; either writer closes it. */
    private readonly fh: fs.FileHandle,
    private readonly startSize: number,
    private readonly fallback: (fh: fs.FileHandle, startSize: number) => FileWriter,
  ) {}

  get size(): number {
    return (this.inner ? this.inner.size : this.startSize) + this.heldBytes;
  }

  async write(chunk: Buffer): Promise<boolean> {
    if (this.inner) return this.inner.write(chunk);
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    // Held only while the process's budget has room: without it, the choice is made now.
    if (this.heldBytes < SLOT_BYTES && requestMemory.tryTake(chunk.length)) {
      this.budgeted += chunk.length;
      return false;
    }
    return this.handOver(await this.choose());
  }

  /** Makes `inner` the writer and hands it the held chunks; answers whether it copied the last one. */
  private async handOver(inner: FileWriter): Promise<boolean> {
    this.inner = inner;
    let copied = false;
    try {
      while (this.held.length > 0) {
        const held = this.held.shift() as Buffer;
        this.heldBytes -= held.length;
        // Its budget goes back as the chunk goes (a buffered inner writer asks for its own).
        const budgeted = Math.min(held.length, this.budgeted);
        this.budgeted -= budgeted;
        requestMemory.give(budgeted);
        copied = await inner.write(held);
      }
    } finally {
      this.giveBudget();
    }
    return copied;
  }

  private giveBudget(): void {
    requestMemory.give(this.budgeted);
    this.budgeted = 0;
  }

  private async choose(): Promise<FileWriter> {
    if (!this.target.enabled() || this.startSize % DIRECT_ALIGN !== 0) return this.fallback(this.fh, this.startSize);
    const slots = slotPool.takeForUpload(SLOTS_PER_UPLOAD);
    if (!slots) return this.fallback(this.fh, this.startSize);
    try {
      const direct = await fs.open(this.target.full, fsConstants.O_WRONLY | fsConstants.O_DIRECT);
      return new DirectFileWriter(this.target, direct, this.fh, this.startSize, slots);
    } catch (err) {
      slotPool.giveAll(slots);
      if (isUnsupported(err)) this.target.unsupported();
      return this.fallback(this.fh, this.startSize);
    }
  }

  private async settle(): Promise<FileWriter> {
    if (!this.inner) await this.handOver(this.fallback(this.fh, this.startSize));
    return this.inner as FileWriter;
  }

  async commit(): Promise<void> {
    await (await this.settle()).commit();
  }

  async close(): Promise<void> {
    await (await this.settle()).close();
  }

  async cancel(): Promise<void> {
    this.held = [];
    this.heldBytes = 0;
    this.giveBudget();
    this.inner ??= this.fallback(this.fh, this.startSize);
    await this.inner.cancel();
  }
}

/**
 * Appends to a file from an aligned offset: chunks are copied into the filling slot; a full slot
 * is written with one positioned O_DIRECT write while the next fills. With more than two slots,
 * several writes run at once (at their own offsets) once a first one has gone through: a disk
 * whose latency jumps then keeps taking data instead of stalling the upload behind one write.
 * At the end, the whole blocks left go direct and the tail buffered, through `tail`. Should a
 * direct write be refused (EINVAL), it and everything after it go buffered, and the target is
 * told to stop trying.
 */
export class DirectFileWriter implements FileWriter {
  private filling: Buffer;
  private readonly spare: Buffer[];
  private fill = 0;
  /** Bytes handed to writes (done or in flight), after the start size. */
  private submitted = 0;
  private readonly inFlight = new Set<Promise<void>>();
  /** A direct write has gone through: more than one may run at once from then on. */
  private confirmed = false;
  private failure: unknown;
  private directOk = true;
  private closed = false;

  /** Slots held: the filling one, the spare ones and one per write in flight. */
  private get held(): number {
    return 1 + this.spare.length + this.inFlight.size;
  }
  /** Gives back a spare slot beyond the two every upload keeps (see SlotPool.takePair). */
  private readonly lend = (): Buffer | undefined => {
    if (this.held <= 2 || this.spare.length === 0) return undefined;
    const slot = this.spare.pop();
    if (this.held <= 2) slotPool.lender(this.lend, false);
    return slot;
  };

  constructor(
    private readonly target: DirectTarget,
    private readonly direct: fs.FileHandle,
    private readonly tail: fs.FileHandle,
    private readonly startSize: number,
    slots: Buffer[],
  ) {
    [this.filling, ...this.spare] = slots;
    if (this.held > 2) slotPool.lender(this.lend, true);
  }

  get size(): number {
    return this.startSize + this.submitted + this.fill;
  }

  async write(chunk: Buffer): Promise<boolean> {
    if (this.failure !== undefined) throw this.failure;
    let at = 0;
    while (at < chunk.length) {
      const n = chunk.copy(this.filling, this.fill, at);
      this.fill += n;
      at += n;
      if (this.fill === SLOT_BYTES) {
        await this.roomForWrite();
        if (this.failure !== undefined) throw this.failure;
        this.startWrite(SLOT_BYTES);
      }
    }
    return true;
  }

  /** Waits until a slot is free and fewer writes run than allowed (one until a direct write has gone through). */
  private async roomForWrite(): Promise<void> {
    while (this.inFlight.size > 0 && (this.spare.length === 0 || !this.confirmed)) await Promise.race(this.inFlight);
  }

  /** Writes the first `bytes` of the filling slot at the current end; the next slot fills. */
  private startWrite(bytes: number): void {
    const slot = this.filling;
    const position = this.startSize + this.submitted;
    this.filling = this.spare.pop() as Buffer;
    this.submitted += bytes;
    this.fill -= bytes;
    // What is not written now (the tail of the last slot) moves to the front of the next one.
    if (this.fill > 0) slot.copy(this.filling, 0, bytes, bytes + this.fill);
    const write: Promise<void> = this.writeAt(slot, bytes, position).then(
      () => {
        this.spare.push(slot);
        this.inFlight.delete(write);
      },
      (err: unknown) => {
        this.spare.push(slot);
        this.inFlight.delete(write);
        this.failure ??= isFull(err) ? new StorageFullError(this.target.path) : err;
      },
    );
    this.inFlight.add(write);
  }

  private async writeAt(slot: Buffer, bytes: number, position: number): Promise<void> {
    let done = 0;
    if (this.directOk && bytes % DIRECT_ALIGN === 0) {
      try {
        while (done < bytes) done += (await this.direct.write(slot, done, bytes - done, position + done)).bytesWritten;
        this.confirmed = true;
        return;
      } catch (err) {
        if (!isUnsupported(err) || done % DIRECT_ALIGN !== 0) throw err;
        this.directOk = false;
        this.target.unsupported();
      }
    }
    // Buffered, at its own offset (the tail handle is not O_APPEND).
    while (done < bytes) done += (await this.tail.write(slot, done, bytes - done, position + done)).bytesWritten;
  }

  /** Waits for every write started so far. */
  private async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.race(this.inFlight);
  }

  /** Writes what is held: whole blocks direct, the tail buffered. */
  private async drain(): Promise<void> {
    await this.settled();
    if (this.failure === undefined && this.fill > 0) {
      const blocks = this.fill - (this.fill % DIRECT_ALIGN);
      if (blocks > 0) {
        this.startWrite(blocks);
        await this.settled();
      }
      if (this.failure === undefined && this.fill > 0) {
        this.startWrite(this.fill); // shorter than a block: buffered
        await this.settled();
      }
    }
    if (this.failure !== undefined) throw this.failure;
  }

  async commit(): Promise<void> {
    try {
      await this.drain();
      // fsync is per inode: it covers the buffered tail written through the other handle too.
      await this.direct.sync();
    } finally {
      await this.closeHandles();
    }
  }

  async close(): Promise<void> {
    try {
      await this.drain();
    } finally {
      await this.closeHandles();
    }
  }

  async cancel(): Promise<void> {
    this.fill = 0;
    await this.settled();
    await this.closeHandles();
    await fs.rm(this.target.full, { force: true });
  }

  private async closeHandles(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    slotPool.lender(this.lend, false);
    slotPool.giveAll([this.filling, ...this.spare.splice(0)]);
    await Promise.all([this.direct.close(), this.tail.close()]);
  }
}
