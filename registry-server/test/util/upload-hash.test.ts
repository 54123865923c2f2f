// The running digest of uploads: hashed here or on the worker thread, across requests, many at
// once, dropped midway, and with the worker gone; and large uploads over HTTP that use it.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { hashWorker, OFFLOAD_FROM_BYTES, UploadHash } from "../../src/util/upload-hash";
import { errorCode, sha256 } from "../helpers/registry";
import { startServer, TestServer } from "../helpers/server";

const MiB = 1024 * 1024;

function expected(content: Buffer): string {
  return createHash("sha256").update(content).digest("hex");
}

/** Feeds `content` in `chunk`-sized pieces, split into requests at `requests` (byte offsets), as uploads do. */
async function feed(hash: UploadHash, content: Buffer, chunk: number, requests: number[] = []): Promise<void> {
  const ends = [...requests, content.length];
  let at = 0;
  for (const end of ends) {
    for (; at < end; at = Math.min(at + chunk, end)) {
      const wait = hash.update(content.subarray(at, Math.min(at + chunk, end)));
      if (wait) await wait;
    }
    hash.settle();
  }
}

async function segmentsBack(total: number): Promise<void> {
  for (let i = 0; i < 200 && hashWorker.idle < total; i++) await new Promise((r) => setTimeout(r, 10));
}

describe("upload hash", () => {
  it("gives the SHA-256 of what was fed, below, at and above the offload size, in any chunking", async () => {
    for (const size of [0, 100, OFFLOAD_FROM_BYTES - 1, OFFLOAD_FROM_BYTES, OFFLOAD_FROM_BYTES + 1, 5 * MiB + 123]) {
      for (const chunk of [1000, 65_536, 300_000]) {
        const content = randomBytes(size);
        const hash = new UploadHash("sha256");
        await feed(hash, content, chunk);
        assert.equal(await hash.digest(), expected(content), `${size} bytes in chunks of ${chunk}`);
      }
    }
  });

  it("keeps one state across requests, whether the first one stays here or goes to the worker", async () => {
    const content = randomBytes(4 * MiB + 7);
    // A small first request: hashed here, and so is the rest.
    const here = new UploadHash("sha256");
    await feed(here, content, 65_536, [1000, 2 * MiB]);
    assert.equal(await here.digest(), expected(content));
    // A large first request: at the worker, and so is a small one after it.
    const there = new UploadHash("sha256");
    await feed(there, content, 65_536, [2 * MiB, 2 * MiB + 10]);
    assert.equal(await there.digest(), expected(content));
  });

  it("hashes many uploads at once, more than the shared segments hold, each right, and frees every segment", async () => {
    const idle = (new UploadHash("sha256"), hashWorker.idle);
    const contents = Array.from({ length: 12 }, (_, i) => randomBytes(3 * MiB + i * 4099));
    const hashes = contents.map(() => new UploadHash("sha256"));
    await Promise.all(contents.map((c, i) => feed(hashes[i], c, 16_384 + i * 1000)));
    const digests = await Promise.all(hashes.map((h) => h.digest()));
    digests.forEach((d, i) => assert.equal(d, expected(contents[i]), `upload ${i}`));
    await segmentsBack(Math.max(idle, 1));
    assert.ok(hashWorker.idle >= idle, `idle segments ${hashWorker.idle}, ${idle} before`);
  });

  it("a hash dropped midway gives its segments back", async () => {
    const hash = new UploadHash("sha256");
    await feed(hash, randomBytes(2 * MiB + 5), 65_536);
    const idle = hashWorker.idle;
    hash.drop();
    await segmentsBack(idle + 1);
    assert.ok(hashWorker.idle > idle, `idle segments ${hashWorker.idle}, ${idle} before the drop`);
  });

  it("when the worker stops, digests in progress fail (the caller rehashes the data) and new uploads get a new worker", async () => {
    const content = randomBytes(3 * MiB);
    const cut = new UploadHash("sha256");
    await feed(cut, content.subarray(0, 2 * MiB), 65_536);
    await hashWorker.crash();
    await feed(cut, content.subarray(2 * MiB), 65_536);
    await assert.rejects(cut.digest(), /worker stopped/);
    const fresh = new UploadHash("sha256");
    await feed(fresh, content, 65_536);
    assert.equal(await fresh.digest(), expected(content));
  });
});

describe("upload hash, chunks handed over whole", () => {
  /** Feeds copies of `content` in chunks that own their memory; every `copiedEvery`th one is marked as still in use (copied). */
  async function feedOwned(hash: UploadHash, content: Buffer, chunk: number, copiedEvery: number, requests: number[] = []): Promise<Buffer[]> {
    const sent: Buffer[] = [];
    const ends = [...requests, content.length];
    let at = 0;
    let i = 0;
    for (const end of ends) {
      for (; at < end; at = Math.min(at + chunk, end), i++) {
        const piece = Buffer.from(content.subarray(at, Math.min(at + chunk, end)));
        sent.push(piece);
        const wait = hash.update(piece, i % copiedEvery !== 0);
        if (wait) await wait;
      }
      hash.settle();
    }
    return sent;
  }

  it("gives the right digest whichever chunks are transferred and which copied, across requests, and transfers those it may", async () => {
    for (const [size, chunk, copiedEvery, requests] of [
      [5 * MiB + 321, 65_536, 3, []],
      [5 * MiB + 321, 65_536, 1, []],
      [5 * MiB + 321, 65_536, 1_000_000, []],
      [9 * MiB, 100_000, 7, [MiB + 5, 4 * MiB]],
      [3 * MiB, 20_000, 2, [2 * MiB]],
      [3 * MiB, 5000, 2, [2 * MiB]],
    ] as [number, number, number, number[]][]) {
      const content = randomBytes(size);
      const hash = new UploadHash("sha256");
      const sent = await feedOwned(hash, content, chunk, copiedEvery, requests);
      assert.equal(await hash.digest(), expected(content), `${size} bytes in chunks of ${chunk}, every ${copiedEvery}th kept`);
      const transferred = sent.filter((b) => b.length === 0).length;
      if (copiedEvery === 1) assert.equal(transferred, 0, "chunks still in use are never transferred");
      else if (chunk < 16_384) assert.equal(transferred, 0, "small chunks are copied (many to a segment)");
      else assert.ok(transferred > sent.length / 4, `${transferred} of ${sent.length} chunks transferred`);
    }
  });

  it("copies chunks that share their memory (slices of a larger buffer) even when they may be handed over", async () => {
    const content = randomBytes(3 * MiB);
    const hash = new UploadHash("sha256");
    for (let at = 0; at < content.length; at += 65_536) {
      const wait = hash.update(content.subarray(at, at + 65_536), true);
      if (wait) await wait;
    }
    assert.equal(content.length, 3 * MiB, "the shared buffer was not taken");
    assert.equal(await hash.digest(), expected(content));
  });

  it("many uploads handing chunks over at once, past the room for them at the worker, each right", async () => {
    const contents = Array.from({ length: 10 }, (_, i) => randomBytes(2 * MiB + i * 70_001));
    const hashes = contents.map(() => new UploadHash("sha256"));
    await Promise.all(contents.map((c, i) => feedOwned(hashes[i], c, 65_536, 5)));
    const digests = await Promise.all(hashes.map((h) => h.digest()));
    digests.forEach((d, i) => assert.equal(d, expected(contents[i]), `upload ${i}`));
  });

  it("a hash dropped with chunks not yet sent, and a worker stopped with chunks at it, leave the next uploads right", async () => {
    const content = randomBytes(3 * MiB + 1);
    const dropped = new UploadHash("sha256");
    await feedOwned(dropped, content.subarray(0, 2 * MiB + 70_000), 65_536, 4);
    dropped.drop();
    const cut = new UploadHash("sha256");
    await feedOwned(cut, content.subarray(0, 2 * MiB), 65_536, 4);
    await hashWorker.crash();
    await feedOwned(cut, content.subarray(2 * MiB), 65_536, 4);
    await assert.rejects(cut.digest(), /worker stopped/);
    for (let i = 0; i < 3; i++) {
      const next = new UploadHash("sha256");
      await feedOwned(next, content, 65_536, 4);
      assert.equal(await next.digest(), expected(content));
    }
  });
});

describe("large uploads over HTTP", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer();
  });
  after(() => srv.close());

  async function session(repo: string): Promise<string> {
    const res = await fetch(`${srv.url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
    assert.equal(res.status, 202);
    return res.headers.get("location") as string;
  }

  it("a 6 MiB blob in 2 MiB PATCHes, one monolithic, and one with a wrong digest", async () => {
    const content = randomBytes(6 * MiB + 321);
    const location = await session("large/chunked");
    for (let at = 0; at < content.length; at += 2 * MiB) {
      const end = Math.min(at + 2 * MiB, content.length);
      const res = await fetch(`${srv.url}${location}`, { method: "PATCH", body: content.subarray(at, end), headers: { "Content-Range": `${at}-${end - 1}` } });
      assert.equal(res.status, 202);
    }
    const put = await fetch(`${srv.url}${location}?digest=${sha256(content)}`, { method: "PUT" });
    assert.equal(put.status, 201);
    const get = await fetch(`${srv.url}/v2/large/chunked/blobs/${sha256(content)}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));

    const mono = randomBytes(5 * MiB);
    const post = await fetch(`${srv.url}/v2/large/mono/blobs/uploads/?digest=${sha256(mono)}`, { method: "POST", body: mono });
    assert.equal(post.status, 201);

    const wrong = await fetch(`${srv.url}/v2/large/wrong/blobs/uploads/?digest=${sha256(Buffer.from("other"))}`, { method: "POST", body: randomBytes(3 * MiB) });
    assert.equal(wrong.status, 400);
    assert.equal(await errorCode(wrong), "DIGEST_INVALID");
  });

  it("an upload whose hashing worker stopped midway is verified from its data instead", async () => {
    const content = randomBytes(4 * MiB + 5);
    const location = await session("large/crash");
    const first = await fetch(`${srv.url}${location}`, { method: "PATCH", body: content.subarray(0, 2 * MiB), headers: { "Content-Range": `0-${2 * MiB - 1}` } });
    assert.equal(first.status, 202);
    await hashWorker.crash();
    const second = await fetch(`${srv.url}${location}`, { method: "PATCH", body: content.subarray(2 * MiB), headers: { "Content-Range": `${2 * MiB}-${content.length - 1}` } });
    assert.equal(second.status, 202);
    const bad = await fetch(`${srv.url}${location}?digest=${sha256(Buffer.from("other"))}`, { method: "PUT" });
    assert.equal(bad.status, 400, "a wrong digest is still refused");
    const again = await session("large/crash");
    await hashWorker.crash();
    const put = await fetch(`${srv.url}${again}?digest=${sha256(content)}`, { method: "PUT", body: content });
    assert.equal(put.status, 201);
  });
});
