// The running digest of an upload. Small uploads are hashed on the main thread; past its first
// MiB an upload is hashed on a worker thread. Profile of 512 MiB pushes before: SHA-256 was 30% of
// the server's samples, all on the main thread, then ~85% busy. The bytes reach the worker in
// one of two ways, in order, 512 KiB or more per message:
// - a chunk its writer has copied (into an O_DIRECT staging slot) is no longer needed here: its
//   memory is transferred to the worker as it is, no copy at all. Every socket read of a request
//   body is its own ArrayBuffer (node's HTTP parser copies it out of the socket's buffer), so this
//   is every chunk of a large upload but its first 512 KiB of each request. Copying them took
//   about a tenth of the main thread (perf: 9.7-11% of its samples in that memmove), and its
//   Buffer copies went from 7.0% to 3.4% of its profile without it;
// - any other chunk (one a buffered writer still holds) is copied into a 512 KiB segment
//   transferred to the worker and back.
// (Shared memory was tried first: copies into a SharedArrayBuffer go through V8's relaxed
// memmove, 17% of the samples.)
import { createHash, Hash } from "node:crypto";
import { Worker } from "node:worker_threads";
import { IdleRelease } from "./idle-release";
import { requestMemory } from "./memory-budget";

/** Bytes an upload must reach (within one request) before its hashing moves to the worker. */
export const OFFLOAD_FROM_BYTES = 1 << 20;
/**
 * Bytes per segment: one message each way per segment. Each message costs the main thread
 * ~30 µs (postMessage wakes the worker, then its reply wakes the main thread): with 256 KiB
 * segments, postMessage was 13% of the main thread's samples during chunked pushes (1 MiB segments:
 * 8% less CPU per GiB pushed, but 4 MiB more at peak with 8 parallel pushes).
 */
const SEGMENT_BYTES = 512 << 10;
/**
 * Segments at most: 4 MiB, which bounds what waits at the worker (uploads wait for a segment
 * when none is free, first come first served). Allocated as needed and reused, the last freed first.
 */
const SEGMENTS = 8;
/**
 * Bytes of transferred chunks at the worker or on their way there, at most (2 MiB); past it, chunks are
 * copied into segments instead (whose pool makes uploads wait). With 4 MiB, the peak RSS of 8
 * parallel 64 MiB pushes was 7 MiB higher (median of 12 rounds, 97.5 vs 90.5 MiB) and scattered
 * more (90-106 vs 88-95), for no throughput measurably gained (A/B of 8 rounds, parallel and
 * monolithic pushes: differences inside the scatter).
 */
const TAKEN_BYTES = 2 << 20;
/** Smaller chunks are copied even when they could be transferred (a segment holds many of them for one message). */
const MIN_TAKEN_BYTES = 16 << 10;

// The worker: one hash state per upload id, updated in message order. Segments go back; the
// memory of transferred chunks is garbage once hashed, and a young collection after each batch of
// messages frees it at once (the worker allocates so little that its own collections would come
// late). Collecting only every 2 MiB of it left the bench's parallel pushes 15-20 MiB higher at
// peak (freed in bursts, the chunks left the main thread's malloc arena spread out); sending them
// back to be freed on the main thread measured no faster than copying them (8 rounds: 668 vs
// 648 MB/s for parallel pushes, 632 vs 625 for one push).
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
let collect;
try {
  require("node:v8").setFlagsFromString("--expose-gc");
  collect = require("node:vm").runInNewContext("gc");
} catch {}
const states = new Map();
let collecting = false;
parentPort.on("message", (m) => {
  if (m.op === "update") {
    let hash = states.get(m.id);
    if (!hash) states.set(m.id, (hash = createHash(m.algorithm)));
    const back = [];
    let taken = 0;
    for (const p of m.pieces) {
      hash.update(new Uint8Array(p.buffer, 0, p.length));
      if (p.segment) back.push(p.buffer);
      else taken += p.length;
    }
    parentPort.postMessage({ op: "update", buffers: back, taken }, back);
    if (collect && taken > 0 && !collecting) {
      collecting = true;
      // Once the messages waiting now are handled: their chunks are garbage then.
      setImmediate(() => {
        collecting = false;
        collect({ type: "minor", execution: "sync" });
      });
    }
  } else if (m.op === "digest") {
    const hash = states.get(m.id) ?? createHash(m.algorithm);
    states.delete(m.id);
    parentPort.postMessage({ op: "digest", id: m.id, hex: hash.digest("hex") });
  } else if (m.op === "drop") {
    states.delete(m.id);
  }
});
`;

/** Bytes on their way to the worker: a segment (it comes back) or a transferred chunk (it does not). */
interface Piece {
  buffer: ArrayBuffer;
  length: number;
  segment: boolean;
}

type WorkerReply = { op: "update"; buffers: ArrayBuffer[]; taken: number } | { op: "digest"; id: number; hex: string };

class WorkerGone extends Error {
  constructor() {
    super("the hashing worker stopped");
  }
}

/** The process's hashing worker and its segments; started at first use, restarted after a failure. */
class HashWorker {
  private worker: Worker | undefined;
  /** Segments here and free; `allocated` counts those here and those at the worker. */
  private free: Buffer[] = [];
  private allocated = 0;
  private waiters: (() => void)[] = [];
  /** Bytes of transferred chunks not yet hashed (see TAKEN_BYTES). */
  private taken = 0;
  private digests = new Map<number, { resolve(hex: string): void; reject(err: Error): void }>();
  private nextId = 1;
  /** Updates and digests the worker has not answered yet. */
  private pending = 0;
  /** Bumped when a worker dies: hashes from before cannot finish. */
  generation = 0;
  /** Free segments are let go after a quiet spell (see idle-release.ts). */
  private readonly idleRelease = new IdleRelease(() => this.releaseFree());

  /** A new hash id, starting the worker if needed; undefined when it cannot run. */
  open(): number | undefined {
    if (!this.worker && !this.start()) return undefined;
    return this.nextId++;
  }

  private start(): boolean {
    try {
      const worker = new Worker(WORKER_SOURCE, { eval: true });
      worker.on("message", (reply: WorkerReply) => this.onReply(reply));
      worker.on("error", () => this.stopped(worker));
      worker.on("exit", () => this.stopped(worker));
      // Referenced only while it has work (busy()); after the listeners, since adding one refs it.
      worker.unref();
      this.worker = worker;
      this.pending = 0;
      return true;
    } catch {
      return false;
    }
  }

  private stopped(worker: Worker): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    // Segments at the worker are gone with it; those of hashes from before are not taken back.
    this.free = [];
    this.allocated = 0;
    this.taken = 0;
    this.generation++;
    for (const pending of this.digests.values()) pending.reject(new WorkerGone());
    this.digests.clear();
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Work sent (+1) or answered (-1): the process waits for the worker only while it has some. */
  private busy(delta: number): void {
    this.pending += delta;
    if (this.pending === delta && delta > 0) this.worker?.ref();
    else if (this.pending === 0) this.worker?.unref();
  }

  private onReply(reply: WorkerReply): void {
    this.busy(-1);
    if (reply.op === "update") {
      this.taken -= reply.taken;
      for (const buffer of reply.buffers) this.release(Buffer.from(buffer));
    } else {
      const pending = this.digests.get(reply.id);
      this.digests.delete(reply.id);
      pending?.resolve(reply.hex);
    }
  }

  /** A free segment now, unless others wait for one. */
  takeSegment(): Buffer | undefined {
    this.idleRelease.touch();
    if (this.waiters.length > 0) return undefined;
    const segment = this.free.pop();
    if (segment || this.allocated >= SEGMENTS) return segment;
    this.allocated++;
    return Buffer.from(new ArrayBuffer(SEGMENT_BYTES));
  }

  /** A free segment, waiting for one (in turn) if need be; undefined if the worker of `generation` is gone. */
  async segment(generation: number): Promise<Buffer | undefined> {
    if (this.generation !== generation) return undefined;
    let segment = this.takeSegment();
    while (!segment) {
      await new Promise<void>((wake) => this.waiters.push(wake));
      if (this.generation !== generation) return undefined;
      segment = this.free.pop();
    }
    return segment;
  }

  /**
   * Reserves room at the worker for a chunk to be transferred to it; false when the chunk is
   * better copied into a segment (the worker is behind, or the chunk's memory is shared with
   * other bytes or cannot move).
   */
  reserveTaken(chunk: Buffer): boolean {
    const buffer = chunk.buffer;
    if (!(buffer instanceof ArrayBuffer) || chunk.byteOffset !== 0 || chunk.length !== buffer.byteLength || chunk.length === 0) return false;
    if (this.taken > 0 && this.taken + chunk.length > TAKEN_BYTES) return false;
    this.taken += chunk.length;
    return true;
  }

  /** Gives back the room of chunks that will not be sent after all. */
  unreserveTaken(bytes: number): void {
    this.taken = Math.max(0, this.taken - bytes);
  }

  /**
   * Hands pieces to the worker, in order, transferring their memory: segments are unusable here
   * until they come back, chunks are gone.
   */
  update(id: number, algorithm: string, pieces: Piece[]): void {
    const worker = this.worker;
    if (!worker) return;
    this.busy(1);
    const message = { op: "update", id, algorithm, pieces };
    try {
      worker.postMessage(message, pieces.map((p) => p.buffer));
    } catch {
      // A buffer that cannot be transferred (marked so by its allocator): send copies of the chunks.
      for (const p of pieces) if (!p.segment) p.buffer = p.buffer.slice(0, p.length);
      worker.postMessage(message, pieces.filter((p) => p.segment).map((p) => p.buffer));
    }
  }

  digest(id: number, algorithm: string): Promise<string> {
    const worker = this.worker;
    if (!worker) return Promise.reject(new WorkerGone());
    return new Promise<string>((resolve, reject) => {
      this.digests.set(id, { resolve, reject });
      this.busy(1);
      worker.postMessage({ op: "digest", id, algorithm });
    });
  }

  release(segment: Buffer): void {
    this.free.push(segment);
    this.waiters.shift()?.();
  }

  /** Drops the free segments (the GC then returns their memory); answers whether there were any. */
  releaseFree(): boolean {
    const any = this.free.length > 0;
    this.allocated -= this.free.length;
    this.free = [];
    return any;
  }

  drop(id: number): void {
    this.worker?.postMessage({ op: "drop", id });
  }

  /** Segments that can be taken now, allocated or not (tests). */
  get idle(): number {
    return this.free.length + SEGMENTS - this.allocated;
  }

  /** Stops the worker as if it had failed (tests). */
  async crash(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.stopped(worker);
    await worker.terminate();
  }
}

export const hashWorker = new HashWorker();

/** Where the hash of an upload is kept: not yet known, here, or at the worker. */
interface WorkerPlace {
  at: "worker";
  id: number;
  /** The worker's generation when this hash started there. */
  generation: number;
  /** Pieces ready to go to the worker, in order, and their bytes; the filling segment comes after them. */
  pieces: Piece[];
  pieceBytes: number;
  /** The segment being filled, and how far. */
  segment: Buffer | undefined;
  fill: number;
  /** Bytes could not reach the worker (it stopped): the digest must come from the data instead. */
  lost: boolean;
}
/** A chunk held before the upload's place is decided, and whether its memory may be transferred. */
interface Held {
  chunk: Buffer;
  owned: boolean;
}
/** Chunks held while undecided: their bytes, and how many of them were taken from the request memory budget. */
type Undecided = { at: "undecided"; held: Held[]; bytes: number; budgeted: number };
type Place = Undecided | { at: "local"; hash: Hash } | WorkerPlace;

/** The held chunks are about to go (hashed here, sent, or dropped): their budget is given back. */
function decided(place: Undecided): void {
  requestMemory.give(place.budgeted);
  place.budgeted = 0;
}

/**
 * The digest of an upload's bytes, fed in order. Bytes are held (not copied) until the request
 * has brought OFFLOAD_FROM_BYTES (or the request memory budget has no room for them); then they
 * go to the worker, or, when a request ends with less (`settle`), they are hashed here and so is
 * the rest of the upload.
 */
export class UploadHash {
  private place: Place = { at: "undecided", held: [], bytes: 0, budgeted: 0 };

  constructor(
    /** Node's name of the hash (sha256, sha512). */
    private readonly algorithm: string,
  ) {}

  /**
   * Adds bytes; answers a promise when the caller should wait before the next (backpressure).
   * With `owned`, nothing else refers to the chunk's memory (its writer copied it): it may be
   * transferred to the worker, after which the chunk is empty here.
   */
  update(chunk: Buffer, owned = false): Promise<void> | undefined {
    const place = this.place;
    if (place.at === "local") {
      place.hash.update(chunk);
      return undefined;
    }
    if (place.at === "worker") return this.send(place, chunk, owned);
    place.held.push({ chunk, owned });
    place.bytes += chunk.length;
    // Held only while the process's request memory budget has room; without it, to the worker now.
    if (place.bytes < OFFLOAD_FROM_BYTES && requestMemory.tryTake(chunk.length)) {
      place.budgeted += chunk.length;
      return undefined;
    }
    const id = hashWorker.open();
    if (id === undefined) {
      this.settle();
      return undefined;
    }
    const worker: WorkerPlace = { at: "worker", id, generation: hashWorker.generation, pieces: [], pieceBytes: 0, segment: undefined, fill: 0, lost: false };
    this.place = worker;
    return (async () => {
      // The held chunks go in order (waiting for segments if need be); each one's budget is given
      // back once it has gone, not before: until then this upload still holds it.
      try {
        for (let held = place.held.shift(); held; held = place.held.shift()) {
          const bytes = held.chunk.length;
          await this.send(worker, held.chunk, held.owned);
          const budgeted = Math.min(bytes, place.budgeted);
          place.budgeted -= budgeted;
          requestMemory.give(budgeted);
        }
      } finally {
        decided(place);
      }
    })();
  }

  /**
   * The end of a request: bytes still held are hashed here, and what waits to go to the worker
   * goes (no segment waits for the upload's next request).
   */
  settle(): void {
    const place = this.place;
    if (place.at === "worker") {
      if (this.usable(place)) this.post(place);
      return;
    }
    if (place.at !== "undecided") return;
    decided(place);
    const hash = createHash(this.algorithm);
    for (const held of place.held) hash.update(held.chunk);
    this.place = { at: "local", hash };
  }

  /** The hex digest of everything added; rejects when the worker failed meanwhile (rehash from the data then). */
  async digest(): Promise<string> {
    this.settle();
    const place = this.place;
    if (place.at === "local") return place.hash.digest("hex");
    if (place.at !== "worker") throw new Error("unreachable");
    if (!this.usable(place)) throw new WorkerGone();
    return hashWorker.digest(place.id, this.algorithm);
  }

  /** Forgets the state (an upload cancelled, failed or evicted). */
  drop(): void {
    const place = this.place;
    if (place.at === "undecided") decided(place);
    if (place.at === "worker" && place.generation === hashWorker.generation) {
      this.unsend(place);
      hashWorker.drop(place.id);
    }
    this.place = { at: "local", hash: createHash(this.algorithm) };
  }

  /** Whether the worker this hash is at still runs and has every byte so far. */
  private usable(place: WorkerPlace): boolean {
    if (place.generation !== hashWorker.generation) place.lost = true;
    return !place.lost;
  }

  /** Gives back what was never sent: segments to the pool, the room reserved for chunks. */
  private unsend(place: WorkerPlace): void {
    for (const p of place.pieces) {
      if (p.segment) hashWorker.release(Buffer.from(p.buffer));
      else hashWorker.unreserveTaken(p.length);
    }
    if (place.segment !== undefined) hashWorker.release(place.segment);
    place.pieces = [];
    place.pieceBytes = 0;
    place.segment = undefined;
    place.fill = 0;
  }

  /** Sends a chunk on its way to the worker: a promise only when it must wait for a segment. */
  private send(place: WorkerPlace, chunk: Buffer, owned: boolean): Promise<void> | undefined {
    if (!this.usable(place)) return undefined;
    if (owned && chunk.length >= MIN_TAKEN_BYTES && hashWorker.reserveTaken(chunk)) {
      // The segment being filled holds earlier bytes: it goes first.
      this.closeSegment(place);
      place.pieces.push({ buffer: chunk.buffer as ArrayBuffer, length: chunk.length, segment: false });
      place.pieceBytes += chunk.length;
      if (place.pieceBytes >= SEGMENT_BYTES) this.post(place);
      return undefined;
    }
    const stopped = this.copyIn(place, chunk, 0);
    return stopped < 0 ? undefined : this.sendRest(place, chunk, stopped);
  }

  private async sendRest(place: WorkerPlace, chunk: Buffer, at: number): Promise<void> {
    while (at >= 0) {
      place.segment = await hashWorker.segment(place.generation);
      place.fill = 0;
      at = this.copyIn(place, chunk, at);
    }
  }

  /** Copies from `at` while segments are free: -1 when done, else where it stopped for want of one. */
  private copyIn(place: WorkerPlace, chunk: Buffer, at: number): number {
    while (at < chunk.length) {
      // A segment of a worker that has since stopped may belong to someone else now.
      if (!this.usable(place)) return -1;
      if (place.segment === undefined) {
        place.segment = hashWorker.takeSegment();
        if (place.segment === undefined) {
          // Segments waiting in this upload's pieces come back only once sent.
          this.post(place);
          return at;
        }
        place.fill = 0;
      }
      const n = chunk.copy(place.segment, place.fill, at);
      place.fill += n;
      at += n;
      if (place.fill === SEGMENT_BYTES) this.post(place);
    }
    return -1;
  }

  /** Moves the segment being filled, if it holds bytes, to the end of the pieces. */
  private closeSegment(place: WorkerPlace): void {
    if (place.segment === undefined || place.fill === 0) return;
    place.pieces.push({ buffer: place.segment.buffer as ArrayBuffer, length: place.fill, segment: true });
    place.pieceBytes += place.fill;
    place.segment = undefined;
    place.fill = 0;
  }

  /** Hands the pieces, and the segment being filled, to the worker (segments come back to the pool once hashed). */
  private post(place: WorkerPlace): void {
    this.closeSegment(place);
    // An empty segment is not kept waiting for more bytes (they may come with the next request, or never).
    if (place.segment !== undefined) hashWorker.release(place.segment);
    place.segment = undefined;
    if (place.pieces.length > 0) hashWorker.update(place.id, this.algorithm, place.pieces);
    place.pieces = [];
    place.pieceBytes = 0;
  }
}
