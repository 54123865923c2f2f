// Runs a release (memory kept for reuse: staging slots, hashing segments) once its owner has
// been idle for a while, so that buffers a burst of large transfers needed do not stay resident
// through the hours of small requests that follow (they counted in every later peak RSS).

import { collectAll } from "./young-gc";

/** Idle time after which kept buffers are let go. Allocating them again costs ~1 ms per 8 MiB. */
export const IDLE_RELEASE_MS = 2000;

export class IdleRelease {
  private last = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** Lets go of what is kept; answers whether it let go of anything (then the heap is collected). */
    private readonly release: () => boolean,
    private readonly idleMs = IDLE_RELEASE_MS,
    /** Frees what was let go (a full collection in the background; tests observe it). */
    private readonly collect: () => void = collectAll,
  ) {}

  /** Notes activity: the release runs idleMs after the last one (a timer that does not keep the process alive). */
  touch(): void {
    this.last = Date.now();
    this.timer ??= this.schedule(this.idleMs);
  }

  private schedule(ms: number): NodeJS.Timeout {
    return setTimeout(() => {
      const quiet = Date.now() - this.last;
      if (quiet < this.idleMs) {
        this.timer = this.schedule(this.idleMs - quiet);
        return;
      }
      this.timer = undefined;
      if (this.release()) this.collect();
    }, ms).unref();
  }
}
