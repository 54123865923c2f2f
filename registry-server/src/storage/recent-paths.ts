// Paths found or written recently, so that the filesystem driver can look them up on the
// event loop (see HOT_MS in filesystem.ts). Only a hint: a path wrongly taken for recent costs
// one synchronous call that may wait on the disk, never a wrong answer, since every lookup is
// still made. So paths are kept by a 30-bit hash (a Map of small integers: 1 MiB for 32768
// entries, where the paths alone would take 6), and a collision, about once in 3·10^4 lookups
// when full, is harmless.

/** FNV-1a of the path's characters from `from` (the part after the store's root). */
function hashPath(path: string, from: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193);
  // 30 bits: a small integer, stored in the Map as it is (a 32-bit value would be a heap number
  // half the time, 16 more bytes per entry).
  return h & 0x3fffffff;
}

export class RecentPaths {
  /** Path hash -> when it was last seen, in ms since `epoch` (a small integer for 12 days). */
  private readonly seen = new Map<number, number>();
  private readonly epoch = Date.now();

  /**
   * @param prefixLength characters every path starts with (the root), left out of the hash
   * @param maxAgeMs how long a path stays recent
   * @param capacity paths kept at most (the first seen are forgotten first)
   */
  constructor(
    private readonly prefixLength: number,
    private readonly maxAgeMs: number,
    private readonly capacity: number,
  ) {}

  get size(): number {
    return this.seen.size;
  }

  /** Whether the path was seen less than maxAgeMs ago. */
  has(path: string): boolean {
    const key = hashPath(path, this.prefixLength);
    const at = this.seen.get(key);
    if (at === undefined) return false;
    if (Date.now() - this.epoch - at < this.maxAgeMs) return true;
    this.seen.delete(key);
    return false;
  }

  /** Notes the path as seen now. */
  add(path: string): void {
    const key = hashPath(path, this.prefixLength);
    // Refreshed in place (first in, first out): moving an entry to the end on every lookup costs more.
    if (this.seen.size >= this.capacity && !this.seen.has(key)) this.seen.delete(this.seen.keys().next().value as number);
    this.seen.set(key, Date.now() - this.epoch);
  }

  forget(path: string): void {
    this.seen.delete(hashPath(path, this.prefixLength));
  }
}
