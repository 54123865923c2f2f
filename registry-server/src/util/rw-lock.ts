/**
 * A readers-writer lock inside one process. Pushes that publish references (blob links,
 * manifests) hold it shared; garbage collection holds it exclusively for each re-check and
 * delete, so it never removes something a push has just started to reference.
 */
export class ReadWriteLock {
  private readers = 0;
  private writer = false;
  private readonly waitingWriters: (() => void)[] = [];
  private waitingReaders: (() => void)[] = [];

  async shared<T>(work: () => Promise<T>): Promise<T> {
    if (this.writer || this.waitingWriters.length > 0) await new Promise<void>((r) => this.waitingReaders.push(r));
    else this.readers++;
    try {
      return await work();
    } finally {
      this.readers--;
      this.wake();
    }
  }

  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.writer || this.readers > 0) await new Promise<void>((r) => this.waitingWriters.push(r));
    else this.writer = true;
    try {
      return await work();
    } finally {
      this.writer = false;
      this.wake();
    }
  }

  private wake(): void {
    if (this.writer || this.readers > 0) return;
    const next = this.waitingWriters.shift();
    if (next) {
      this.writer = true;
      next();
      return;
    }
    const readers = this.waitingReaders;
    this.waitingReaders = [];
    this.readers += readers.length;
    readers.forEach((r) => r());
  }
}

/**
 * Exclusive sections of one long task run one at a time, however many of its parts run at once.
 * Writers go before waiting readers, so parts that queued their next section while another held
 * the lock would keep readers (pushes) out until the whole task ended: taking turns, each section
 * waits behind the readers that arrived meanwhile, as a task doing one thing at a time would.
 */
export function exclusiveInTurn(lock: ReadWriteLock): <T>(work: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(work: () => Promise<T>): Promise<T> => {
    const run = tail.then(() => lock.exclusive(work));
    tail = run.catch(() => undefined);
    return run;
  };
}
