// Direct I/O of the filesystem driver: aligned staging slots, writers that go past the page
// cache and fall back to buffered writes, downloads read direct, and the slots always coming back.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import { constants as fsConstants } from "node:fs";
import * as fs from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, it } from "node:test";
import { DirectFileWriter, DirectTarget, SLOT_BYTES, SlotPool, slotPool } from "../../src/storage/direct-io";
import { FilesystemFileSource } from "../../src/storage/file-source";
import { FilesystemDriver } from "../../src/storage/filesystem";
import { writeAll } from "../helpers/chunks";
import { pushBlob } from "../helpers/registry";
import { startServer } from "../helpers/server";
import { sink } from "../helpers/sink";

const MiB = 1024 * 1024;

function einval(): NodeJS.ErrnoException {
  return Object.assign(new Error("EINVAL: invalid argument, write"), { code: "EINVAL" });
}

describe("direct I/O", () => {
  let dir = "";
  beforeEach(async () => {
    // Under the working directory's file system (tmpdir may be a tmpfs, which ignores alignment).
    dir = await fs.mkdtemp(path.join(process.env.TMPDIR ?? tmpdir(), "direct-io-"));
  });
  afterEach(() => fs.rm(dir, { recursive: true, force: true }));

  it("slots are SLOT_BYTES long, distinct, aligned for O_DIRECT, and run out at the pool's bound", async () => {
    const pool = new SlotPool(1);
    const slots: Buffer[] = [];
    for (let s = pool.takeOne(); s; s = pool.takeOne()) slots.push(s);
    assert.equal(slots.length, 8);
    assert.equal(pool.takePair(), undefined);
    slots.forEach((s, i) => s.fill(i));
    slots.forEach((s, i) => assert.ok(s.length === SLOT_BYTES && s[0] === i && s[SLOT_BYTES - 1] === i));
    const fh = await fs.open(path.join(dir, "aligned"), fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_DIRECT);
    try {
      for (const [i, s] of slots.entries()) await fh.write(s, 0, SLOT_BYTES, i * SLOT_BYTES);
      // A buffer that is not aligned is refused: the check above means something.
      await assert.rejects(fh.write(slots[0], 512 + 16, 4096, 0), { code: "EINVAL" });
    } finally {
      await fh.close();
    }
    for (const s of slots) pool.give(s);
    assert.equal(pool.idle, 8);
  });

  it("a pool that cannot allocate an arena answers no slots (buffered I/O then), without throwing", () => {
    const pool = new SlotPool(4, () => {
      throw new RangeError("WebAssembly.Memory(): could not allocate memory");
    });
    assert.equal(pool.takePair(), undefined);
    assert.equal(pool.takeOne(), undefined);
    assert.equal(pool.idle, 0);
  });

  it("every slot comes back after uploads committed, closed and cancelled, and downloads finished or abandoned", async () => {
    const driver = new FilesystemDriver(dir);
    await driver.init();
    const content = randomBytes(3 * MiB + 1234);
    const w1 = await driver.writer("/a/data", false);
    await writeAll(w1, content);
    const idleDuring = slotPool.idle;
    await w1.commit();
    assert.ok(slotPool.idle >= idleDuring + 2, "a committed writer gives back its two slots");
    const baseline = slotPool.idle;
    const w2 = await driver.writer("/b/data", false);
    await writeAll(w2, content);
    await w2.close();
    const w3 = await driver.writer("/c/data", false);
    await writeAll(w3, content);
    await w3.cancel();
    assert.equal(slotPool.idle, baseline);

    const source = await driver.openSource("/a/data");
    const whole = sink();
    await source.sendTo(whole.stream, 0, content.length - 1);
    assert.ok(whole.bytes().equals(content));
    // A client that stops reading, then goes away: like a socket, the stream fails the write it
    // holds when destroyed (the slot comes back after sendTo has returned).
    let held: ((err?: Error) => void) | undefined;
    const leaving = new Writable({
      highWaterMark: 1024,
      write(_chunk: Buffer, _enc, callback) {
        held = callback;
        setTimeout(() => leaving.destroy(), 10);
      },
      destroy(err, callback) {
        held?.(new Error("gone"));
        callback(err);
      },
    });
    await source.sendTo(leaving, 0, content.length - 1);
    await source.close();
    // The held write fails once the stream is destroyed (a timer above): wait for it, within reason.
    for (let waited = 0; slotPool.idle < baseline && waited < 2000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    assert.ok(slotPool.idle >= baseline, `idle slots ${slotPool.idle}, before the downloads ${baseline}`);
  });

  it("downloads over HTTP that clients abandon midway give back their slots", async () => {
    const server = await startServer();
    try {
      const content = randomBytes(6 * MiB);
      const digest = await pushBlob(server.url, "direct/abandoned", content);
      const whole = await fetch(`${server.url}/v2/direct/abandoned/blobs/${digest}`);
      assert.ok(Buffer.from(await whole.arrayBuffer()).equals(content));
      const baseline = slotPool.idle;
      for (let i = 0; i < 6; i++) {
        await new Promise<void>((resolve, reject) => {
          const req = http.get(`${server.url}/v2/direct/abandoned/blobs/${digest}`, (res) => {
            res.once("data", () => {
              // Stop reading and go away with most of the blob unsent.
              res.pause();
              setTimeout(() => {
                req.destroy();
                resolve();
              }, 20);
            });
          });
          req.on("error", reject);
        });
      }
      for (let waited = 0; slotPool.idle < baseline && waited < 2000; waited += 20) await new Promise((r) => setTimeout(r, 20));
      assert.ok(slotPool.idle >= baseline, `idle slots ${slotPool.idle}, before the downloads ${baseline}`);
    } finally {
      await server.close();
    }
  });

  it("with every slot taken, uploads and downloads go buffered and stay byte-identical", async () => {
    const driver = new FilesystemDriver(dir);
    await driver.init();
    const taken: Buffer[] = [];
    for (let s = slotPool.takeOne(); s; s = slotPool.takeOne()) taken.push(s);
    try {
      const content = randomBytes(2 * MiB + 99);
      const w = await driver.writer("/exhausted/data", false);
      await writeAll(w, content, 100_000);
      await w.commit();
      assert.ok((await driver.getContent("/exhausted/data")).equals(content));
      const source = await driver.openSource("/exhausted/data");
      const out = sink();
      await source.sendTo(out.stream, 1, content.length - 1);
      await source.close();
      assert.ok(out.bytes().equals(content.subarray(1)));
      assert.equal(slotPool.idle, 0);
    } finally {
      for (const s of taken) slotPool.give(s);
    }
  });

  it("a direct write refused with EINVAL is written buffered, and the driver is told once", async () => {
    const full = path.join(dir, "refused");
    const real = await fs.open(full, "w");
    let refusals = 0;
    let told = 0;
    // A file system that opens O_DIRECT but refuses the writes (some FUSE and network file systems).
    const direct = {
      write: async () => {
        refusals++;
        throw einval();
      },
      sync: () => real.sync(),
      close: async () => undefined,
    } as unknown as fs.FileHandle;
    const target: DirectTarget = { path: "/refused", full, enabled: () => told === 0, unsupported: () => told++ };
    const slots = slotPool.takeForUpload(4);
    assert.ok(slots);
    const w = new DirectFileWriter(target, direct, real, 0, slots);
    const content = randomBytes(3 * MiB + 4096 * 3 + 17);
    await writeAll(w, content, 77_777);
    assert.equal(w.size, content.length);
    await w.commit();
    assert.ok((await fs.readFile(full)).equals(content));
    assert.equal(refusals, 1, "after the first refusal no direct write is tried");
    assert.equal(told, 1);
  });

  it("several direct writes at once land at their offsets whatever order they finish in; a refusal after them too", async () => {
    for (const refuseAt of [undefined, 5]) {
      const full = path.join(dir, `unordered-${refuseAt ?? "none"}`);
      const real = await fs.open(full, fsConstants.O_WRONLY | fsConstants.O_CREAT);
      let writes = 0;
      let concurrent = 0;
      let most = 0;
      // A disk whose writes take random times (each really written, at its offset, when it ends).
      const direct = {
        write: async (buf: Buffer, off: number, len: number, pos: number) => {
          const n = ++writes;
          concurrent++;
          most = Math.max(most, concurrent);
          await new Promise((r) => setTimeout(r, 1 + Math.floor(Math.random() * 8)));
          concurrent--;
          if (n === refuseAt) throw einval();
          return real.write(buf, off, len, pos);
        },
        sync: () => real.sync(),
        close: async () => undefined,
      } as unknown as fs.FileHandle;
      const target: DirectTarget = { path: "/unordered", full, enabled: () => true, unsupported: () => undefined };
      const idle = slotPool.idle;
      const slots = slotPool.takeForUpload(4);
      assert.ok(slots);
      assert.equal(slots.length, 4, "an upload alone gets four slots");
      const other = slotPool.takeForUpload(4);
      assert.equal(other?.length, 2, "another one at the same time gets two");
      slotPool.giveAll(other ?? []);
      const w = new DirectFileWriter(target, direct, real, 0, slots);
      const content = randomBytes(6 * MiB + 4096 + 5);
      await writeAll(w, content, 65_536);
      assert.equal(w.size, content.length);
      await w.commit();
      assert.ok((await fs.readFile(full)).equals(content), `content intact (refusal at write ${refuseAt ?? "none"})`);
      assert.ok(most >= 2, `writes ran ${most} at most at once`);
      assert.ok(slotPool.idle >= idle, "every slot is back");
    }
  });

  it("extra slots of an upload are taken back, when idle, before the pool would run out", async () => {
    const full = path.join(dir, "lender");
    const real = await fs.open(full, fsConstants.O_WRONLY | fsConstants.O_CREAT);
    const direct = await fs.open(full, fsConstants.O_WRONLY | fsConstants.O_DIRECT);
    const target: DirectTarget = { path: "/lender", full, enabled: () => true, unsupported: () => undefined };
    const slots = slotPool.takeForUpload(4);
    assert.equal(slots?.length, 4);
    const w = new DirectFileWriter(target, direct, real, 0, slots ?? []);
    const content = randomBytes(5 * MiB + 4096 + 3);
    await writeAll(w, content.subarray(0, 2 * MiB), 65_536);
    const others: Buffer[] = [];
    for (let s = slotPool.takeOne(); s; s = slotPool.takeOne()) others.push(s);
    // Only idle extra slots are taken back: its writes in flight finish first.
    let pair = slotPool.takePair();
    for (let waited = 0; !pair && waited < 5000; waited += 20) {
      await new Promise((r) => setTimeout(r, 20));
      pair = slotPool.takePair();
    }
    assert.equal(pair?.length, 2, "two of the upload's idle extra slots");
    assert.equal(slotPool.takePair(), undefined, "the upload keeps two");
    await writeAll(w, content.subarray(2 * MiB), 65_536);
    await w.commit();
    assert.ok((await fs.readFile(full)).equals(content));
    for (const s of [...others, ...(pair ?? [])]) slotPool.give(s);
  });

  it("appending to a file continues at its end, direct and buffered", async () => {
    const driver = new FilesystemDriver(dir);
    await driver.init();
    const first = randomBytes(MiB + 333);
    const second = randomBytes(3 * MiB + 4096);
    let w = await driver.writer("/append/data", false);
    await writeAll(w, first, 70_000);
    await w.close();
    w = await driver.writer("/append/data", true);
    assert.equal(w.size, first.length);
    await writeAll(w, second, 65_536);
    await w.commit();
    assert.ok((await driver.getContent("/append/data")).equals(Buffer.concat([first, second])));
  });

  it("a direct read refused with EINVAL is read buffered, and the driver is told", async () => {
    const full = path.join(dir, "source");
    const content = randomBytes(3 * MiB + 5);
    await fs.writeFile(full, content);
    const fh = await fs.open(full, "r");
    let told = 0;
    const direct = {
      read: async () => {
        throw einval();
      },
      close: async () => undefined,
    } as unknown as fs.FileHandle;
    const source = new FilesystemFileSource("/source", fh, content.length, direct, () => told++);
    const idle = slotPool.idle;
    for (const [start, end] of [
      [0, content.length - 1],
      [4097, 2 * MiB + 3],
    ]) {
      const out = sink();
      await source.sendTo(out.stream, start, end);
      assert.ok(out.bytes().equals(content.subarray(start, end + 1)), `bytes ${start}-${end}`);
    }
    await source.close();
    assert.equal(told, 1);
    assert.equal(slotPool.idle, Math.max(idle, slotPool.idle));
  });

  it("a file that ends before the range asked for fails the download instead of sending short", async () => {
    const driver = new FilesystemDriver(dir);
    await driver.init();
    const content = randomBytes(2 * MiB);
    await driver.putContent("/short/data", content);
    const source = await driver.openSource("/short/data");
    await fs.truncate(path.join(dir, "short/data"), MiB + 100);
    await assert.rejects(source.sendTo(sink().stream, 0, content.length - 1), /ends at/);
    await source.close();
  });
});
