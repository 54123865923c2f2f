// Paths seen recently, as hints for the filesystem driver: which lookups can be made on the
// event loop (see HOT_MS in filesystem.ts), which directories exist (see place()). Only hints:
// a path wrongly taken for recent costs one synchronous call that may wait on the disk, a
// directory wrongly taken for existing costs a failed rename and a retry; never a wrong answer,
// since every lookup and rename is still made. So paths are kept by a 32-bit hash in a fixed
// table of typed arrays: 17 bytes per path it is meant to hold, outside the JavaScript heap,
// where a Map of the same hashes took 56 bytes per path in the heap (its table doubles past the
// count, with 8-byte slots), 1.8 MiB for 32,768 paths, and the path strings themselves 140
// bytes each. A hash collision, about once in 10^9 lookups when full, is harmless.

/** FNV-1a of the path's characters from `from` (the part after the store's root); never 0 (an empty slot). */
function hashPath(path: string, from: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < path.length; i++) h = Math.imul(h ^ path.charCodeAt(i), 0x01000193);
  return h >>> 0 || 1;
}

export class RecentPaths {
  /** Path hashes, two slots per set (0: empty). */
  private readonly keys: Uint32Array;
  /** When each slot's path was last seen, in ms since `epoch`, modulo 2^32 (49 days: a hint at worst). */
  private readonly times: Uint32Array;
  /** Per set, which of its two slots was added to last (times tie within a millisecond). */
  private readonly newest: Uint8Array;
  /** Right shift that turns a mixed hash into a set number. */
  private readonly shift: number;
  private readonly epoch = Date.now();
  private used = 0;

  /**
   * @param prefixLength characters every path starts with (the root), left out of the hash
   * @param maxAgeMs how long a path stays recent (Infinity: until it is crowded out)
   * @param capacity paths it is meant to hold: the table has twice as many slots, in sets of
   *   two, so that a set rarely overflows; a path added to a full set replaces the one of the
   *   two added or found least recently
   */
  constructor(
    private readonly prefixLength: number,
    private readonly maxAgeMs: number,
    capacity: number,
  ) {
    const setBits = Math.max(1, Math.ceil(Math.log2(capacity)));
    this.keys = new Uint32Array(2 << setBits);
    this.times = new Uint32Array(2 << setBits);
    this.newest = new Uint8Array(1 << setBits);
    this.shift = 32 - setBits;
  }

  /** Slots holding a path. */
  get size(): number {
    return this.used;
  }

  /** Whether the path was seen less than maxAgeMs ago. */
  has(path: string): boolean {
    const slot = this.find(hashPath(path, this.prefixLength));
    if (slot < 0) return false;
    if (this.age(slot) >= this.maxAgeMs) {
      this.clear(slot);
      return false;
    }
    // A path looked up is kept over the other of its set when a third one comes (least recently
    // used goes): a directory that every write goes through, but that no write creates, stays.
    const first = slot & ~1;
    this.newest[first >> 1] = slot - first;
    return true;
  }

  /** Notes the path as seen now. */
  add(path: string): void {
    const key = hashPath(path, this.prefixLength);
    const first = this.setOf(key);
    let slot = this.find(key);
    if (slot < 0) {
      // An empty slot of the set, else the one not added to last.
      slot = this.keys[first] === 0 ? first : this.keys[first + 1] === 0 ? first + 1 : first + 1 - this.newest[first >> 1];
      if (this.keys[slot] === 0) this.used++;
      this.keys[slot] = key;
    }
    this.times[slot] = this.now();
    this.newest[first >> 1] = slot - first;
  }

  forget(path: string): void {
    const slot = this.find(hashPath(path, this.prefixLength));
    if (slot >= 0) this.clear(slot);
  }

  /** The first slot of the key's set (Fibonacci hashing: the high bits of a multiplication mix every bit in). */
  private setOf(key: number): number {
    return (Math.imul(key, 0x9e3779b1) >>> this.shift) << 1;
  }

  private find(key: number): number {
    const first = this.setOf(key);
    return this.keys[first] === key ? first : this.keys[first + 1] === key ? first + 1 : -1;
  }

  private now(): number {
    return (Date.now() - this.epoch) >>> 0;
  }

  private age(slot: number): number {
    return (this.now() - this.times[slot]) >>> 0;
  }

  private clear(slot: number): void {
    this.keys[slot] = 0;
    this.used--;
  }
}
