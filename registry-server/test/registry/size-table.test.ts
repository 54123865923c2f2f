// The table of blob sizes per prefix directory, checked against a Map over random operations.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { Digest } from "../../src/reference";
import { SizeTable } from "../../src/registry/size-table";

const randomDigest = () => Digest.parse(`sha256:${randomBytes(32).toString("hex")}`);

/** A deterministic generator (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("blob size table", () => {
  it("agrees with a Map over 200,000 random sets, replacements and deletes, totals included", () => {
    const next = random(7);
    const pool = Array.from({ length: 3000 }, randomDigest);
    const table = new SizeTable();
    const model = new Map<string, number>();
    for (let op = 0; op < 200_000; op++) {
      const digest = pool[Math.floor(next() * pool.length)];
      const key = digest.toString();
      if (next() < 0.4) {
        assert.equal(table.delete(digest), model.get(key), `delete #${op}`);
        model.delete(key);
      } else {
        const size = next() < 0.05 ? 0 : Math.floor(next() * 2 ** 40);
        assert.equal(table.set(digest, size), model.get(key), `set #${op}`);
        model.set(key, size);
      }
      if (op % 997 === 0) {
        assert.equal(table.count, model.size);
        assert.equal(table.bytes, [...model.values()].reduce((a, b) => a + b, 0));
      }
    }
    for (const digest of pool) assert.equal(table.get(digest), model.get(digest.toString()));
  });

  it("tells apart digests whose slot bits are the same", () => {
    const table = new SizeTable();
    // The same bytes 5-8 (where probing starts), different bytes 1-4.
    const digests = Array.from({ length: 50 }, (_, i) => Digest.parse(`sha256:ab${i.toString(16).padStart(8, "0")}00000000${"0".repeat(46)}`));
    digests.forEach((d, i) => table.set(d, i));
    digests.forEach((d, i) => assert.equal(table.get(d), i));
    assert.equal(table.delete(digests[10]), 10);
    assert.equal(table.get(digests[10]), undefined);
    assert.equal(table.get(digests[11]), 11, "a deletion does not cut the probe path of the keys after it");
    assert.equal(table.count, 49);
  });

  it("stays small when blobs come and go (deletion markers are reused and cleared)", () => {
    const table = new SizeTable();
    const live: Digest[] = [];
    for (let i = 0; i < 100_000; i++) {
      const digest = randomDigest();
      table.set(digest, i);
      live.push(digest);
      if (live.length > 20) table.delete(live.shift() as Digest);
    }
    assert.equal(table.count, 20);
    assert.ok(table.capacity <= 64, `${table.capacity} slots for 20 blobs`);
    for (const d of live) assert.notEqual(table.get(d), undefined);
  });
});
