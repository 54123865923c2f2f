// Sizes of the blobs of one prefix directory (blobs/<alg>/<xx>/), for storage usage. This is the
// one table that grows with the store, so it keeps 16 bytes a slot outside the JS heap (a
// quarter to three quarters of the slots hold a blob): 64 bits of the digest (its bytes after the
// first, which the directory already names) and the size. For 60,000 blobs in 256 directories:
// 38 bytes per blob, where a Map keyed by the digest's bytes as a string took 79 of heap. Two blobs
// of one directory sharing those 64 bits (about once in 10^8 for a million-blob store) would be
// counted as one: a usage figure off by one blob, never a blob lost.
import type { Digest } from "../reference";

const EMPTY = -1;
const DELETED = -2;
const MIN_SLOTS = 8;

/** The 64 bits of a digest that key it in its prefix directory's table, as two 32-bit halves. */
function sizeKey(digest: Digest): [number, number] {
  const hex = digest.hex;
  return [parseInt(hex.slice(2, 10), 16) >>> 0, parseInt(hex.slice(10, 18), 16) >>> 0];
}

/** Open addressing with linear probing; deletes leave markers that inserts reuse and growth clears. */
export class SizeTable {
  private keys: Uint32Array;
  private sizes: Float64Array;
  /** Slots holding a size. */
  private live = 0;
  /** Slots holding a size or a deletion marker. */
  private used = 0;
  /** Sum of the sizes held. */
  private sum = 0;

  constructor(slots = MIN_SLOTS) {
    const n = 1 << Math.ceil(Math.log2(Math.max(slots, MIN_SLOTS)));
    this.keys = new Uint32Array(2 * n);
    this.sizes = new Float64Array(n).fill(EMPTY);
  }

  get count(): number {
    return this.live;
  }

  get bytes(): number {
    return this.sum;
  }

  get(digest: Digest): number | undefined {
    const [hi, lo] = sizeKey(digest);
    const slot = this.find(hi, lo);
    return slot < 0 ? undefined : this.sizes[slot];
  }

  /** Sets a blob's size; answers the size it had, if any. */
  set(digest: Digest, size: number): number | undefined {
    const [hi, lo] = sizeKey(digest);
    const slot = this.find(hi, lo);
    if (slot >= 0) {
      const old = this.sizes[slot];
      this.sizes[slot] = size;
      this.sum += size - old;
      return old;
    }
    // At most three quarters full, deletion markers included.
    if (4 * (this.used + 1) > 3 * this.sizes.length) this.resize();
    this.insert(hi, lo, size);
    return undefined;
  }

  /** Removes a blob; answers the size it had, if any. */
  delete(digest: Digest): number | undefined {
    const [hi, lo] = sizeKey(digest);
    const slot = this.find(hi, lo);
    if (slot < 0) return undefined;
    const old = this.sizes[slot];
    this.sizes[slot] = DELETED;
    this.live--;
    this.sum -= old;
    return old;
  }

  /** Slots allocated (tests). */
  get capacity(): number {
    return this.sizes.length;
  }

  /** The slot holding the key, or -1. */
  private find(hi: number, lo: number): number {
    const mask = this.sizes.length - 1;
    for (let slot = lo & mask; ; slot = (slot + 1) & mask) {
      const size = this.sizes[slot];
      if (size === EMPTY) return -1;
      if (size !== DELETED && this.keys[2 * slot] === hi && this.keys[2 * slot + 1] === lo) return slot;
    }
  }

  /** Puts a key known to be absent in the first free slot on its path (a deletion marker or an empty slot). */
  private insert(hi: number, lo: number, size: number): void {
    const mask = this.sizes.length - 1;
    let slot = lo & mask;
    while (this.sizes[slot] >= 0) slot = (slot + 1) & mask;
    if (this.sizes[slot] === EMPTY) this.used++;
    this.keys[2 * slot] = hi;
    this.keys[2 * slot + 1] = lo;
    this.sizes[slot] = size;
    this.live++;
    this.sum += size;
  }

  /** Rebuilds the table without deletion markers, at most half full with the insert to come. */
  private resize(): void {
    const { keys, sizes } = this;
    const n = 1 << Math.ceil(Math.log2(Math.max(MIN_SLOTS, 2 * (this.live + 1))));
    this.keys = new Uint32Array(2 * n);
    this.sizes = new Float64Array(n).fill(EMPTY);
    this.live = 0;
    this.used = 0;
    this.sum = 0;
    for (let slot = 0; slot < sizes.length; slot++) {
      if (sizes[slot] >= 0) this.insert(keys[2 * slot], keys[2 * slot + 1], sizes[slot]);
    }
  }
}
