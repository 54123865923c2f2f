// The running digest of an upload. Small uploads are hashed on the main thread; past its first
// MiB an upload is hashed on a worker thread: the main thread copies the bytes into 512 KiB
// segments (one memcpy, ~0.05 s/GiB, against ~0.65 s/GiB of SHA-256 taken off the thread that
// also parses every request) and transfers each full one to the worker, which sends it back once
// hashed. Profile of 512 MiB pushes before: SHA-256 was 30% of the server's samples, all on the
// main thread, then ~85% busy. (Shared memory was tried first: copies into a SharedArrayBuffer
// go through V8's relaxed memmove, 17% of the samples.)
import { createHash, Hash } from "node:crypto";
import { Worker } from "node:worker_threads";
import { IdleRelease } from "./idle-release";

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

// The worker: one hash state per upload id, updated in message order from segments it sends back.
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { createHash } = require("node:crypto");
const states = new Map();
parentPort.on("message", (m) => {
  if (m.op === "update") {
    let hash = states.get(m.id);
    if (!hash) states.set(m.id, (hash = createHash(m.algorithm)));
    hash.update(new Uint8Array(m.buffer, 0, m.length));
    parentPort.postMessage({ op: "update", buffer: m.buffer }, [m.buffer]);
  } else if (m.op === "digest") {
    const hash = states.get(m.id) ?? createHash(m.algorithm);
    states.delete(m.id);
    parentPort.postMessage({ op: "digest", id: m.id, hex: hash.digest("hex") });
  } else if (m.op === "drop") {
    states.delete(m.id);
  }
});
`;

type WorkerReply = { op: "update"; buffer: ArrayBuffer } | { op: "digest"; id: number; hex: string };

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
      this.release(Buffer.from(reply.buffer));
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


  /** Hands `length` bytes of the segment to the worker (transferred: the segment is unusable here until it comes back). */
  update(id: number, algorithm: string, segment: Buffer, length: number): void {
    const worker = this.worker;
    if (!worker) return;
    this.busy(1);
    const buffer = segment.buffer as ArrayBuffer;
    worker.postMessage({ op: "update", id, algorithm, buffer, length }, [buffer]);
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

  /** Drops the free segments (the GC then returns their memory). */
  releaseFree(): void {
    this.allocated -= this.free.length;
    this.free = [];
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
  /** The segment being filled, and how far. */
  segment: Buffer | undefined;
  fill: number;
  /** Bytes could not reach the worker (it stopped): the digest must come from the data instead. */
  lost: boolean;
}
type Place = { at: "undecided"; held: Buffer[]; bytes: number } | { at: "local"; hash: Hash } | WorkerPlace;

/**
 * The digest of an upload's bytes, fed in order. Bytes are held (not copied) until the request
 * has brought OFFLOAD_FROM_BYTES; then they go to the worker, or, when a request ends with less
 * (`settle`), they are hashed here and so is the rest of the upload.
 */
export class UploadHash {
  private place: Place = { at: "undecided", held: [], bytes: 0 };

  constructor(
    /** Node's name of the hash (sha256, sha512). */
    private readonly algorithm: string,
  ) {}

  /** Adds bytes; answers a promise when the caller should wait before the next (backpressure). */
  update(chunk: Buffer): Promise<void> | undefined {
    const place = this.place;
    if (place.at === "local") {
      place.hash.update(chunk);
      return undefined;
    }
    if (place.at === "worker") return this.send(place, chunk);
    place.held.push(chunk);
    place.bytes += chunk.length;
    if (place.bytes < OFFLOAD_FROM_BYTES) return undefined;
    const id = hashWorker.open();
    if (id === undefined) {
      this.settle();
      return undefined;
    }
    const worker: WorkerPlace = { at: "worker", id, generation: hashWorker.generation, segment: undefined, fill: 0, lost: false };
    this.place = worker;
    return (async () => {
      for (const held of place.held) await this.send(worker, held);
    })();
  }

  /**
   * The end of a request: bytes still held are hashed here, and a segment being filled goes to
   * the worker (no segment waits for the upload's next request).
   */
  settle(): void {
    const place = this.place;
    if (place.at === "worker" && place.segment !== undefined && !place.lost && place.generation === hashWorker.generation) this.post(place);
    if (place.at !== "undecided") return;
    const hash = createHash(this.algorithm);
    for (const held of place.held) hash.update(held);
    this.place = { at: "local", hash };
  }

  /** The hex digest of everything added; rejects when the worker failed meanwhile (rehash from the data then). */
  async digest(): Promise<string> {
    this.settle();
    const place = this.place;
    if (place.at === "local") return place.hash.digest("hex");
    if (place.at !== "worker") throw new Error("unreachable");
    if (place.segment !== undefined && !place.lost && place.generation === hashWorker.generation) this.post(place);
    if (place.lost || place.generation !== hashWorker.generation) throw new WorkerGone();
    return hashWorker.digest(place.id, this.algorithm);
  }

  /** Forgets the state (an upload cancelled, failed or evicted). */
  drop(): void {
    const place = this.place;
    if (place.at === "worker" && place.generation === hashWorker.generation) {
      if (place.segment !== undefined) hashWorker.release(place.segment);
      hashWorker.drop(place.id);
    }
    this.place = { at: "local", hash: createHash(this.algorithm) };
  }

  /** Copies the chunk into segments, handing each full one to the worker; a promise only when it must wait for a segment. */
  private send(place: WorkerPlace, chunk: Buffer): Promise<void> | undefined {
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
      if (place.lost || place.generation !== hashWorker.generation) {
        place.lost = true;
        return -1;
      }
      if (place.segment === undefined) {
        place.segment = hashWorker.takeSegment();
        if (place.segment === undefined) return at;
        place.fill = 0;
      }
      const n = chunk.copy(place.segment, place.fill, at);
      place.fill += n;
      at += n;
      if (place.fill === SEGMENT_BYTES) this.post(place);
    }
    return -1;
  }

  /** Hands the current segment's bytes to the worker (the segment comes back to the pool once hashed). */
  private post(place: WorkerPlace): void {
    const segment = place.segment as Buffer;
    place.segment = undefined;
    if (place.fill === 0) hashWorker.release(segment);
    else hashWorker.update(place.id, this.algorithm, segment, place.fill);
    place.fill = 0;
  }
}
