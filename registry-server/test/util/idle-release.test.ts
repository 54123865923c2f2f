// Buffers kept for reuse are let go after a quiet spell.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { SlotPool } from "../../src/storage/direct-io";
import { IdleRelease } from "../../src/util/idle-release";
import { hashWorker, OFFLOAD_FROM_BYTES, UploadHash } from "../../src/util/upload-hash";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("idle release", () => {
  it("runs once after the last activity, later when activity goes on", async () => {
    let released = 0;
    const idle = new IdleRelease(() => released++ >= 0, 60);
    idle.touch();
    for (let i = 0; i < 4; i++) {
      await sleep(25);
      idle.touch();
    }
    assert.equal(released, 0, "activity every 25 ms keeps it");
    await sleep(120);
    assert.equal(released, 1);
    await sleep(100);
    assert.equal(released, 1, "nothing more without activity");
    idle.touch();
    await sleep(120);
    assert.equal(released, 2);
  });

  it("collects the heap after a release that let go of something, not after one that did not", async () => {
    let collected = 0;
    let hasSome = true;
    const idle = new IdleRelease(() => hasSome, 30, () => collected++);
    idle.touch();
    for (let waited = 0; collected === 0 && waited < 2000; waited += 10) await sleep(10);
    assert.equal(collected, 1);
    hasSome = false;
    let released = false;
    const quiet = new IdleRelease(() => ((released = true), false), 30, () => collected++);
    quiet.touch();
    for (let waited = 0; !released && waited < 2000; waited += 10) await sleep(10);
    await sleep(20);
    assert.ok(released);
    assert.equal(collected, 1, "nothing let go of, nothing to collect");
  });

  it("lets go of staging arenas whose slots are all free, and allocates again when needed", async () => {
    const pool = new SlotPool(2, undefined, 40);
    const pair = pool.takePair();
    const one = pool.takeOne();
    assert.ok(pair && one);
    assert.equal(pool.allocated, 1);
    const idleBefore = pool.idle;
    await sleep(100);
    assert.equal(pool.allocated, 1, "slots in use keep their arena");
    for (const s of [...pair, one]) pool.give(s);
    await sleep(100);
    assert.equal(pool.allocated, 0);
    assert.equal(pool.idle, idleBefore + 3, "what can be taken is unchanged");
    const again = pool.takePair();
    assert.ok(again);
    again[0].fill(7);
    assert.equal(again[0][SLOT_CHECK], 7);
    assert.equal(pool.allocated, 1);
  });

  it("lets go of free hashing segments; hashing goes on after", async () => {
    const data = randomBytes(3 * OFFLOAD_FROM_BYTES + 17);
    const first = new UploadHash("sha256");
    await first.update(data);
    assert.equal(await first.digest(), createHash("sha256").update(data).digest("hex"));
    const idle = hashWorker.idle;
    hashWorker.releaseFree();
    assert.equal(hashWorker.idle, idle);
    const second = new UploadHash("sha256");
    await second.update(data);
    assert.equal(await second.digest(), createHash("sha256").update(data).digest("hex"));
  });
});

const SLOT_CHECK = 4095;
