// The free-space floor (REGISTRY_STORAGE_MINFREE) reads the volume's free bytes; far above the
// floor a reading is reused briefly, near it every check reads afresh.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StorageUsage } from "../../src/registry/usage";
import type { StorageDriver } from "../../src/storage/driver";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** A driver that only answers free space, and counts how often it is asked. */
function volume(free: number): { driver: StorageDriver; reads: () => number; setFree(n: number): void } {
  let bytes = free;
  let reads = 0;
  const driver = {
    freeBytes: async () => {
      reads++;
      return bytes;
    },
  } as unknown as StorageDriver;
  return { driver, reads: () => reads, setFree: (n) => (bytes = n) };
}

describe("free-space floor", () => {
  it("reuses a reading far above the floor, and counts what checks asked for since", async () => {
    const v = volume(10 * GiB);
    const usage = new StorageUsage(v.driver, { minFreeBytes: 64 * MiB });
    await usage.check("app", 100 * MiB);
    await usage.check("app", 100 * MiB);
    await usage.check("app", undefined);
    assert.equal(v.reads(), 1);
    // 8 GiB more asked for within the second leave 1.8 GiB by the estimate: still reused.
    for (let i = 0; i < 8; i++) await usage.check("app", GiB);
    assert.equal(v.reads(), 1);
    // One more GiB would bring the estimate within the 1 GiB margin: it reads again.
    await usage.check("app", GiB);
    assert.equal(v.reads(), 2);
  });

  it("reads afresh on every check near the floor, and refuses as soon as the volume is full", async () => {
    const v = volume(512 * MiB);
    const usage = new StorageUsage(v.driver, { minFreeBytes: 64 * MiB });
    await usage.check("app", MiB);
    await usage.check("app", MiB);
    assert.equal(v.reads(), 2);
    v.setFree(65 * MiB);
    await assert.rejects(usage.check("app", 2 * MiB), (err: Error & { code?: string }) => err.code === "DENIED");
    assert.equal(v.reads(), 3);
  });
});
