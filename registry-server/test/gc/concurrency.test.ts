import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { startServer, TestServer } from "../helpers/server";
import { imageManifest, OCI_MANIFEST, putManifest, sha256 } from "../helpers/registry";

// Garbage collection with no grace period at all runs in a loop while clients push, pull and
// delete. A push may then lose a race (its blobs collected before its manifest arrived: the
// manifest is refused with MANIFEST_BLOB_UNKNOWN, and the client pushes again, as docker does),
// but every image whose push completed must stay pullable, byte for byte.
describe("garbage collection during pushes and pulls", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv.close();
  });

  interface Completed {
    repo: string;
    tag: string;
    manifest: Buffer;
    blobs: Buffer[];
  }

  async function upload(repo: string, content: Buffer): Promise<void> {
    // The two-step upload clients use: POST, then PUT with the body.
    const post = await fetch(`${srv.url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
    assert.equal(post.status, 202);
    const put = await fetch(`${srv.url}${post.headers.get("location")}?digest=${sha256(content)}`, { method: "PUT", body: content });
    assert.equal(put.status, 201, await put.text());
  }

  /** Pushes until the manifest is accepted; answers the number of lost races. */
  async function push(repo: string, tag: string, sharedLayer: Buffer): Promise<{ image: Completed; retries: number }> {
    const config = Buffer.from(JSON.stringify({ tag, nonce: randomBytes(4).toString("hex") }));
    const layer = randomBytes(2048 + Math.floor(Math.random() * 4096));
    const manifest = imageManifest(config, [sharedLayer, layer]);
    for (let attempt = 0; ; attempt++) {
      assert.ok(attempt < 20, "a push kept losing to garbage collection");
      for (const b of [config, sharedLayer, layer]) await upload(repo, b);
      const res = await putManifest(srv.url, repo, tag, manifest, OCI_MANIFEST);
      if (res.status === 201) return { image: { repo, tag, manifest, blobs: [config, sharedLayer, layer] }, retries: attempt };
      const body = (await res.json()) as { errors: { code: string }[] };
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(body.errors[0].code, "MANIFEST_BLOB_UNKNOWN");
    }
  }

  async function verify(img: Completed): Promise<void> {
    const m = await fetch(`${srv.url}/v2/${img.repo}/manifests/${img.tag}`);
    assert.equal(m.status, 200, `${img.repo}:${img.tag}`);
    assert.deepEqual(Buffer.from(await m.arrayBuffer()), img.manifest);
    for (const [i, b] of img.blobs.entries()) {
      const res = await fetch(`${srv.url}/v2/${img.repo}/blobs/${sha256(b)}`);
      const hex = sha256(b).slice(7);
      const where = async () =>
        `${img.repo}:${img.tag} ${["config", "shared layer", "layer"][i]} ${sha256(b)}: ` +
        `link ${existsSync(join(srv.root, "docker/registry/v2/repositories", img.repo, "_layers/sha256", hex, "link")) ? "present" : "missing"}, ` +
        `data ${existsSync(join(srv.root, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data")) ? "present" : "missing"}`;
      if (res.status !== 200) assert.fail(await where());
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), b);
    }
  }

  it("every completed push stays pullable while GC runs in a loop", async () => {
    let stop = false;
    let gcRuns = 0;
    let collected = 0;
    const gcLoop = (async () => {
      while (!stop) {
        const r = await srv.server.registry.gc.run({ gracePeriodMs: 0, deleteUntagged: true });
        gcRuns++;
        collected += r.blobsDeleted;
        await new Promise((res) => setImmediate(res));
      }
    })();

    const completed: Completed[] = [];
    let retries = 0;
    const clients = Array.from({ length: 4 }, (_, c) =>
      (async () => {
        const shared = randomBytes(4096);
        for (let i = 0; i < 8; i++) {
          const repo = `client${c}/app`;
          const { image, retries: r } = await push(repo, `t${i}`, shared);
          retries += r;
          completed.push(image);
          // Re-pointing a throwaway tag leaves garbage behind for the collector.
          const junk = await push(repo, "scratch", randomBytes(1024));
          retries += junk.retries;
          await verify(completed[Math.floor(Math.random() * completed.length)]);
        }
      })(),
    );
    try {
      await Promise.all(clients);
    } finally {
      stop = true;
      await gcLoop;
    }

    // One more collection after the dust settles must not remove anything completed either.
    await srv.server.registry.gc.run({ gracePeriodMs: 0, deleteUntagged: true });
    for (const img of completed) await verify(img);
    assert.ok(gcRuns > 3, `gc ran ${gcRuns} times`);
    assert.ok(collected > 0, "the collector found garbage to remove");
    process.stdout.write(`# gc runs: ${gcRuns}, blobs collected: ${collected}, pushes retried: ${retries}\n`);
  });
});
