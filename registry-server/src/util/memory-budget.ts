// One bound on the memory that requests gather: the chunks an upload holds before its writer or
// its hash decides where they go, a buffered writer's batch, a download's buffers beyond the
// staging slots, and manifest bodies. Each of these was bounded per request only, so memory grew
// with the number of requests at once: 256 concurrent 4 MiB pushes peaked at 369 MiB of RSS,
// 256 concurrent pulls at 534 MiB, past the Deployment's 256 MiB limit.
//
// A holder asks before it gathers more. One that is refused goes on with what it has (it writes
// now, decides now, or reads through a small buffer), so it never waits for another to let go.
// Two kinds of request do wait, in turn, for what they need, and reserve it whole before they
// hold anything: a body that must be whole in memory (a manifest), and a streamed upload's room
// for the chunks it has in hand at a time. No one waits while holding, so the waits cannot deadlock.

/** Bytes all requests together may gather (see above); the per-request pieces are far smaller. */
export const REQUEST_MEMORY_BYTES = 32 << 20;
/**
 * A body of at most this stated length is read without asking for room: what Node holds for any
 * connection anyway (one socket read), and the size of most manifests many times over.
 */
export const SMALL_BODY_BYTES = 64 << 10;

export class MemoryBudget {
  private used = 0;
  private readonly waiters: { bytes: number; wake: () => void }[] = [];

  constructor(readonly limit: number) {}

  /** Bytes taken now (tests, metrics). */
  get inUse(): number {
    return this.used;
  }

  /** Reservations waiting for room (metrics). */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Takes `bytes` when they fit and nobody waits for room; never waits. */
  tryTake(bytes: number): boolean {
    if (this.waiters.length > 0 || this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  /** Takes `bytes` (at most the whole budget), waiting in turn for room. Answers what was taken. */
  async take(bytes: number): Promise<number> {
    const want = Math.min(bytes, this.limit);
    if (this.tryTake(want)) return want;
    await new Promise<void>((wake) => this.waiters.push({ bytes: want, wake }));
    return want;
  }

  /** Gives back bytes taken; wakes those waiting, in order, while they fit. */
  give(bytes: number): void {
    if (bytes <= 0) return;
    this.used = Math.max(0, this.used - bytes);
    while (this.waiters.length > 0 && this.used + this.waiters[0].bytes <= this.limit) {
      const next = this.waiters.shift() as { bytes: number; wake: () => void };
      this.used += next.bytes;
      next.wake();
    }
  }
}

/** The process's budget for what requests gather. */
export const requestMemory = new MemoryBudget(REQUEST_MEMORY_BYTES);
