// The request memory budget in the filesystem driver and the upload hash: what writers, hashes and
// downloads gather counts against it and is given back, and with no room left they gather nothing
// (they write at once, hash at the worker, read through small buffers) and stay byte-identical.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { slotPool } from "../../src/storage/direct-io";
import { FilesystemDriver } from "../../src/storage/filesystem";
import { requestMemory } from "../../src/util/memory-budget";
import { writeAll } from "../helpers/chunks";
import { exhaustBudget } from "../helpers/memory";
import { sink } from "../helpers/sink";
import { UploadHash } from "../../src/util/upload-hash";

const KiB = 1024;

/** Takes every free staging slot (so writers and downloads go buffered); answers the function that gives them back. */
function takeAllSlots(): () => void {
  const taken: Buffer[] = [];
  for (let s = slotPool.takeOne(); s; s = slotPool.takeOne()) taken.push(s);
  return () => taken.forEach((s) => slotPool.give(s));
}

describe("request memory budget", () => {
  let dir = "";
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(process.env.TMPDIR ?? tmpdir(), "request-memory-"));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it("a writer holds an upload's first chunks against the budget and gives them back, committed, closed or cancelled", async () => {
    const driver = new FilesystemDriver(dir);
    await driver.init();
    const before = requestMemory.inUse;
    const content = randomBytes(300 * KiB);
    for (const end of ["commit", "close", "cancel"] as const) {
      const w = await driver.writer(`/${end}/data`, false);
      await writeAll(w, content, 64 * KiB);
      assert.equal(requestMemory.inUse, before + content.length, `${end}: held, and counted`);
      await w[end]();
      assert.equal(requestMemory.inUse, before, `${end}: given back`);
    }
    assert.ok((await driver.getContent("/commit/data")).equals(content));
  });

  it("with no room left, an upload's chunks are written as they come, not held, and the file is byte-identical", async () => {
    const driver = new FilesystemDriver(dir);
    await driver.init();
    const giveSlots = takeAllSlots();
    const giveBudget = exhaustBudget();
    const inUse = requestMemory.inUse;
    try {
      const content = randomBytes(700 * KiB + 5);
      const w = await driver.writer("/full/data", false);
      for (let at = 0; at < content.length; at += 64 * KiB) {
        const chunk = content.subarray(at, at + 64 * KiB);
        await w.write(chunk);
        assert.equal((await fs.stat(path.join(dir, "full/data"))).size, at + chunk.length, "on disk once write() returns");
      }
      await w.commit();
      assert.ok((await driver.getContent("/full/data")).equals(content));
      assert.equal(requestMemory.inUse, inUse);
    } finally {
      giveBudget();
      giveSlots();
    }
  });

  it("downloads past the slots take big buffers from the budget and give them back; with no room, small ones, byte-identical", async () => {
    const driver = new FilesystemDriver(dir);
    await driver.init();
    const content = randomBytes(3 * 1024 * KiB + 77);
    const w = await driver.writer("/dl/data", false);
    await w.write(content);
    await w.commit();
    const giveSlots = takeAllSlots();
    try {
      const before = requestMemory.inUse;
      const roomy = sink();
      const source = await driver.openSource("/dl/data");
      await source.sendTo(roomy.stream, 0, content.length - 1);
      assert.ok(roomy.bytes().equals(content));
      assert.equal(roomy.largest(), 512 * KiB, "big buffers while there is room");
      assert.equal(requestMemory.inUse, before, "given back");

      const giveBudget = exhaustBudget();
      try {
        const tight = sink();
        await source.sendTo(tight.stream, 5, content.length - 1);
        assert.ok(tight.bytes().equals(content.subarray(5)));
        assert.ok(tight.largest() <= 32 * KiB, `largest write ${tight.largest()} bytes with no room in the budget`);
      } finally {
        giveBudget();
      }
      await source.close();
      assert.equal(requestMemory.inUse, before);
    } finally {
      giveSlots();
    }
  });

  it("an upload's hash holds its first chunks against the budget, and with no room sends them on at once; the digest is right either way", async () => {
    const content = randomBytes(900 * KiB);
    const expected = createHash("sha256").update(content).digest("hex");
    const before = requestMemory.inUse;
    const held = new UploadHash("sha256");
    for (let at = 0; at < content.length; at += 64 * KiB) await held.update(content.subarray(at, at + 64 * KiB));
    assert.equal(requestMemory.inUse, before + content.length, "held below the offload size, and counted");
    held.settle();
    assert.equal(requestMemory.inUse, before, "hashed here at the end of the request: given back");
    assert.equal(await held.digest(), expected);

    const giveBudget = exhaustBudget();
    try {
      const inUse = requestMemory.inUse;
      const sent = new UploadHash("sha256");
      for (let at = 0; at < content.length; at += 64 * KiB) await sent.update(content.subarray(at, at + 64 * KiB));
      assert.equal(requestMemory.inUse, inUse);
      sent.settle();
      assert.equal(await sent.digest(), expected);
    } finally {
      giveBudget();
    }

    // Past the offload size: the held chunks go to the worker, and their room comes back as they go.
    const big = randomBytes(3 * 1024 * KiB);
    const offloaded = new UploadHash("sha256");
    for (let at = 0; at < big.length; at += 64 * KiB) await offloaded.update(big.subarray(at, at + 64 * KiB));
    assert.equal(requestMemory.inUse, before);
    assert.equal(await offloaded.digest(), createHash("sha256").update(big).digest("hex"));
    const dropped = new UploadHash("sha256");
    await dropped.update(big.subarray(0, 100 * KiB));
    dropped.drop();
    assert.equal(requestMemory.inUse, before, "a dropped hash gives back what it held");
  });
});
