// The storage driver contract (after distribution's storagedriver/testsuites): what the domain
// stores rely on, stated once and run against every driver. A driver file calls
// `driverContract(name, makeDriver)`; each case gets a fresh driver and cleans it up.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { afterEach, beforeEach, describe, it } from "node:test";
import { PathNotFoundError, StorageDriver } from "../../src/storage/driver";

export interface DriverUnderTest {
  driver: StorageDriver;
  cleanup(): Promise<void>;
}

/** The whole file, sent by a source of the driver (as downloads read it). */
export async function readAll(driver: StorageDriver, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  const source = await driver.openSource(path);
  try {
    await source.sendTo(sink, 0, source.size - 1);
  } finally {
    await source.close();
  }
  return Buffer.concat(chunks);
}

function notFound(path: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof PathNotFoundError, `expected PathNotFoundError, got ${String(err)}`);
    assert.equal(err.path, path);
    return true;
  };
}

/** `count` buffers of `size` bytes, each one byte value repeated: a mix of two is easy to see. */
function uniformContents(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.alloc(size, 0x41 + i));
}

/** Fails when `content` is not exactly one of `allowed`. */
function assertWhole(content: Buffer, allowed: Buffer[], what: string): void {
  assert.ok(
    allowed.some((c) => c.equals(content)),
    `${what}: read ${content.length} bytes starting ${content.subarray(0, 8).toString("hex")}, not one complete content`,
  );
}

/** Runs `read` in a loop until `work` settles; answers how many reads ran. */
async function readWhile(work: Promise<unknown>, read: () => Promise<void>): Promise<number> {
  let done = false;
  const settled = work.finally(() => {
    done = true;
  });
  let reads = 0;
  const readers = Array.from({ length: 4 }, async () => {
    while (!done) {
      await read();
      reads++;
    }
  });
  await Promise.all([settled, ...readers]);
  return reads;
}

/** A writable that copies what it is given (a source reuses its buffers once a write is taken), each write taking delayMs. */
function collector(delayMs: number): { stream: Writable; bytes(): Buffer } {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    highWaterMark: 64 * 1024,
    write(chunk: Buffer, _enc, callback) {
      chunks.push(Buffer.from(chunk));
      if (delayMs > 0) setTimeout(callback, delayMs);
      else callback();
    },
  });
  return { stream, bytes: () => Buffer.concat(chunks) };
}

export function driverContract(name: string, makeDriver: () => Promise<DriverUnderTest>): void {
  describe(`storage driver contract: ${name}`, () => {
    let under: DriverUnderTest | undefined;
    let d: StorageDriver;

    beforeEach(async () => {
      under = await makeDriver();
      d = under.driver;
    });
    afterEach(async () => {
      await under?.cleanup();
      under = undefined;
    });

    it("getContent returns what putContent stored, and a second putContent replaces it", async () => {
      const first = randomBytes(1000);
      await d.putContent("/content/a/b/file", first);
      assert.ok((await d.getContent("/content/a/b/file")).equals(first));
      await d.putContent("/content/a/b/file", "shorter");
      assert.equal((await d.getContent("/content/a/b/file")).toString("utf8"), "shorter");
      await d.putContent("/content/a/b/file", Buffer.alloc(0));
      assert.equal((await d.getContent("/content/a/b/file")).length, 0);
    });

    it("getContent returns files of every size whole, around the sizes a driver reads at once", async () => {
      for (const size of [1, 4095, 4096, 8191, 8192, 8193, 65536, 1_000_003]) {
        const content = randomBytes(size);
        await d.putContent(`/sizes/${size}`, content);
        const back = await d.getContent(`/sizes/${size}`);
        assert.equal(back.length, size);
        assert.ok(back.equals(content), `content of ${size} bytes`);
      }
    });

    it("getContent, stat, list, openSource, delete, move and touch of a missing path throw PathNotFoundError", async () => {
      await d.putContent("/present/file", "x");
      const missing = "/present/missing";
      await assert.rejects(d.getContent(missing), notFound(missing));
      await assert.rejects(d.stat(missing), notFound(missing));
      await assert.rejects(d.list(missing), notFound(missing));
      await assert.rejects(d.openSource(missing), notFound(missing));
      await assert.rejects(d.delete(missing), notFound(missing));
      await assert.rejects(d.move(missing, "/present/elsewhere"), notFound(missing));
      await assert.rejects(d.touch(missing), notFound(missing));
      await assert.rejects(d.getContent("/absent/dir/file"), notFound("/absent/dir/file"));
      await assert.rejects(d.stat("/present/elsewhere"), notFound("/present/elsewhere"));
    });

    it("a source sends ranges of a file to a stream, through backpressure, and tells its size", async () => {
      const content = randomBytes(5 * 1024 * 1024 + 12345);
      await d.putContent("/source/file", content);
      const source = await d.openSource("/source/file");
      try {
        assert.equal(source.size, content.length);
        for (const [start, end, delayMs] of [
          [0, content.length - 1, 0],
          [0, content.length - 1, 2],
          [1_000_000, 3_500_000, 1],
          [content.length - 1, content.length - 1, 0],
          [0, 0, 0],
        ]) {
          const sink = collector(delayMs);
          await source.sendTo(sink.stream, start, end);
          assert.ok(sink.bytes().equals(content.subarray(start, end + 1)), `bytes ${start}-${end}`);
        }
      } finally {
        await source.close();
      }
      await d.putContent("/source/empty", Buffer.alloc(0));
      const empty = await d.openSource("/source/empty");
      try {
        assert.equal(empty.size, 0);
        const sink = collector(0);
        await empty.sendTo(sink.stream, 0, -1);
        assert.equal(sink.bytes().length, 0);
      } finally {
        await empty.close();
      }
    });

    it("a source stops sending to a stream that closes early, and resolves", async () => {
      await d.putContent("/source/big", randomBytes(8 * 1024 * 1024));
      const source = await d.openSource("/source/big");
      let received = 0;
      const stream = new Writable({
        highWaterMark: 1024,
        write(chunk: Buffer, _enc, callback) {
          received += chunk.length;
          // Never calls back after the first chunk, then goes away: the client that disconnects.
          if (received > chunk.length) setTimeout(() => stream.destroy(), 20);
          else callback();
        },
      });
      await source.sendTo(stream, 0, 8 * 1024 * 1024 - 1);
      await source.close();
      assert.ok(received < 8 * 1024 * 1024, `sent ${received} bytes to a closed stream`);
    });

    it("a writer closed and reopened with append continues after the existing content", async () => {
      const [one, two] = [randomBytes(3000), randomBytes(5000)];
      const first = await d.writer("/writer/session/data", false);
      assert.equal(first.size, 0);
      await first.write(one);
      assert.equal(first.size, one.length);
      await first.close();
      assert.equal((await d.stat("/writer/session/data")).size, one.length);

      const second = await d.writer("/writer/session/data", true);
      assert.equal(second.size, one.length, "size counts the existing content");
      await second.write(two);
      assert.equal(second.size, one.length + two.length);
      await second.commit();
      assert.ok((await d.getContent("/writer/session/data")).equals(Buffer.concat([one, two])));
    });

    it("a writer without append starts the file over", async () => {
      await d.putContent("/writer/truncate", "old content that is long");
      const w = await d.writer("/writer/truncate", false);
      assert.equal(w.size, 0);
      await w.write(Buffer.from("new"));
      await w.commit();
      assert.equal((await d.getContent("/writer/truncate")).toString("utf8"), "new");
    });

    it("commit makes everything written readable", async () => {
      const content = randomBytes(100_000);
      const w = await d.writer("/writer/commit/data", false);
      await w.write(content.subarray(0, 1));
      await w.write(content.subarray(1));
      await w.commit();
      assert.equal((await d.stat("/writer/commit/data")).size, content.length);
      assert.ok((await readAll(d, "/writer/commit/data")).equals(content));
    });

    it("cancel removes the file", async () => {
      const w = await d.writer("/writer/cancel/data", false);
      await w.write(randomBytes(70_000));
      await w.cancel();
      await assert.rejects(d.stat("/writer/cancel/data"), notFound("/writer/cancel/data"));
    });

    it("8 MiB written in 64 KiB chunks reads back byte-identical", async () => {
      const content = randomBytes(8 * 1024 * 1024);
      const w = await d.writer("/large/data", false);
      for (let off = 0; off < content.length; off += 64 * 1024) {
        await w.write(content.subarray(off, off + 64 * 1024));
        assert.equal(w.size, Math.min(off + 64 * 1024, content.length));
      }
      await w.commit();
      assert.equal((await d.stat("/large/data")).size, content.length);
      assert.equal(createHash("sha256").update(await readAll(d, "/large/data")).digest("hex"), createHash("sha256").update(content).digest("hex"));
      assert.ok((await d.getContent("/large/data")).equals(content));
    });

    it("writers appending MiBs in odd-sized chunks, ending on and off block boundaries, leave the bytes in order", async () => {
      // Each writer is one PATCH of an upload: the first ends on a 4 KiB boundary, the second
      // starts there and ends in the middle of a block, the third starts there.
      const parts = [randomBytes(4 * 1024 * 1024), randomBytes(2_500_077), randomBytes(1_500_001)];
      let expected = 0;
      for (const [i, part] of parts.entries()) {
        const w = await d.writer("/appended/data", i > 0);
        assert.equal(w.size, expected);
        for (let off = 0; off < part.length; off += 65_521) {
          await w.write(part.subarray(off, off + 65_521));
          assert.equal(w.size, expected + Math.min(off + 65_521, part.length));
        }
        await (i === parts.length - 1 ? w.commit() : w.close());
        expected += part.length;
        assert.equal((await d.stat("/appended/data")).size, expected, `after writer ${i}`);
      }
      const content = Buffer.concat(parts);
      assert.ok((await d.getContent("/appended/data")).equals(content));
      const source = await d.openSource("/appended/data");
      try {
        for (const [start, end] of [
          [0, content.length - 1],
          [4095, 4097],
          [4 * 1024 * 1024 + 1, content.length - 2],
          [content.length - 5000, content.length - 1],
        ]) {
          const sink = collector(0);
          await source.sendTo(sink.stream, start, end);
          assert.ok(sink.bytes().equals(content.subarray(start, end + 1)), `bytes ${start}-${end}`);
        }
      } finally {
        await source.close();
      }
    });

    it("stat reports the size, modification time and kind of a path", async () => {
      const started = Date.now();
      await d.putContent("/stat/dir/file", randomBytes(1234));
      const file = await d.stat("/stat/dir/file");
      assert.equal(file.size, 1234);
      assert.equal(file.isDir, false);
      assert.ok(file.modTime instanceof Date && Math.abs(file.modTime.getTime() - started) < 60_000, `modTime ${file.modTime.toISOString()}`);
      assert.equal((await d.stat("/stat/dir")).isDir, true);
    });

    it("touch sets the modification time to now and leaves the content alone", async () => {
      await d.putContent("/touch/file", "kept");
      const before = (await d.stat("/touch/file")).modTime.getTime();
      await new Promise((resolve) => setTimeout(resolve, 50));
      const touchedAt = Date.now();
      await d.touch("/touch/file");
      const after = (await d.stat("/touch/file")).modTime.getTime();
      assert.ok(after > before && Math.abs(after - touchedAt) < 5_000, `modTime went from ${before} to ${after}, touched at ${touchedAt}`);
      assert.equal((await d.getContent("/touch/file")).toString("utf8"), "kept");
    });

    it("list names the direct children only", async () => {
      await d.putContent("/list/a", "1");
      await d.putContent("/list/b/c", "2");
      await d.putContent("/list/b/d/e", "3");
      assert.deepEqual((await d.list("/list")).sort(), ["a", "b"]);
      assert.deepEqual((await d.list("/list/b")).sort(), ["c", "d"]);
      assert.deepEqual(await d.list("/list/b/d"), ["e"]);
    });

    it("list never shows the driver's temporaries, even while writes are in flight", async () => {
      const names = Array.from({ length: 8 }, (_, i) => `f${i}`);
      await d.putContent("/busy/f0", "seed");
      const writes = Promise.all(names.flatMap((n) => [0, 1, 2].map((round) => d.putContent(`/busy/${n}`, randomBytes(64 * 1024 + round)))));
      const seen = new Set<string>();
      await readWhile(writes, async () => {
        for (const n of await d.list("/busy")) seen.add(n);
        for (const n of await d.list("/")) seen.add(`/${n}`);
      });
      assert.deepEqual(
        [...seen].filter((n) => !names.includes(n) && n !== "/busy"),
        [],
      );
      assert.deepEqual((await d.list("/")).sort(), ["busy"]);
    });

    it("move puts the source at the destination, creating its parents, and removes the source", async () => {
      const content = randomBytes(5000);
      await d.putContent("/move/src/file", content);
      await d.move("/move/src/file", "/move/new/parents/dest");
      assert.ok((await d.getContent("/move/new/parents/dest")).equals(content));
      await assert.rejects(d.stat("/move/src/file"), notFound("/move/src/file"));
    });

    it("move replaces the destination atomically: a concurrent reader sees the old or the new content, whole", async () => {
      const versions = uniformContents(12, 256 * 1024);
      await d.putContent("/atomic-move/dest", versions[0]);
      const moves = (async () => {
        for (let i = 1; i < versions.length; i++) {
          await d.putContent(`/atomic-move/incoming/${i}`, versions[i]);
          await d.move(`/atomic-move/incoming/${i}`, "/atomic-move/dest");
        }
      })();
      const reads = await readWhile(moves, async () => assertWhole(await d.getContent("/atomic-move/dest"), versions, "read during moves"));
      assert.ok(reads > 0);
      assert.ok((await d.getContent("/atomic-move/dest")).equals(versions[versions.length - 1]));
      assert.deepEqual(await d.list("/atomic-move/incoming"), []);
    });

    it("delete removes a whole tree and leaves its siblings", async () => {
      await d.putContent("/tree/doomed/a", "1");
      await d.putContent("/tree/doomed/b/c", "2");
      await d.putContent("/tree/kept", "3");
      await d.delete("/tree/doomed");
      await assert.rejects(d.stat("/tree/doomed/b/c"), notFound("/tree/doomed/b/c"));
      await assert.rejects(d.stat("/tree/doomed"), notFound("/tree/doomed"));
      assert.deepEqual(await d.list("/tree"), ["kept"]);
      await d.delete("/tree/kept");
      assert.deepEqual(await d.list("/tree"), []);
    });

    it("concurrent publications into the same new directories all land (writers racing to create them)", async () => {
      for (let round = 0; round < 3; round++) {
        const dir = `/race${round}/a/b`;
        const names = Array.from({ length: 24 }, (_, i) => `${dir}/${i % 3}/f${i}`);
        await Promise.all(names.map((n, i) => (i % 2 === 0 ? d.putContent(n, n) : d.publish([{ path: n, content: n }, { path: `${n}.tag/current/link`, content: n }]))));
        for (const [i, n] of names.entries()) {
          assert.equal((await d.getContent(n)).toString("utf8"), n);
          if (i % 2 === 1) assert.equal((await d.getContent(`${n}.tag/current/link`)).toString("utf8"), n);
        }
        assert.deepEqual((await d.list(dir)).sort(), ["0", "1", "2"]);
      }
    });

    it("concurrent putContent of different contents to one path never shows a reader a mix or an empty file", async () => {
      const versions = uniformContents(16, 128 * 1024);
      await d.putContent("/race/file", versions[0]);
      const puts = Promise.all([0, 1, 2].flatMap(() => versions.map((v) => d.putContent("/race/file", v))));
      const reads = await readWhile(puts, async () => assertWhole(await d.getContent("/race/file"), versions, "read during puts"));
      assert.ok(reads > 0);
      assertWhole(await d.getContent("/race/file"), versions, "final content");
    });
  });
}
