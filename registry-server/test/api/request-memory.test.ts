// The request memory budget over HTTP: streamed uploads and large manifests wait for room in
// turn (small ones never do; the metrics show who waits), and after a burst of uploads and downloads, some abandoned
// midway, every byte of the budget has come back.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import { after, before, describe, it } from "node:test";
import { requestMemory } from "../../src/util/memory-budget";
import { exhaustBudget } from "../helpers/memory";
import { descriptor, imageManifest, OCI_CONFIG, OCI_MANIFEST, pushBlob, sha256 } from "../helpers/registry";
import { startServer, TestServer } from "../helpers/server";
import { scrape, value } from "../metrics/prometheus";

const KiB = 1024;

/** A request whose body is sent in pieces with no Content-Length (chunked), as docker streams layers. */
function streamed(base: string, method: string, path: string, body: Buffer, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers: { "Content-Type": "application/octet-stream", ...headers } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on("error", reject);
    for (let at = 0; at < body.length; at += 16 * KiB) req.write(body.subarray(at, at + 16 * KiB));
    req.end();
  });
}

async function startSession(base: string, repo: string): Promise<string> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  assert.equal(res.status, 202);
  return new URL(res.headers.get("location") ?? "", base).pathname;
}

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  const settled = await Promise.race([promise.then(() => true as const, () => true as const), late]);
  clearTimeout(timer);
  return settled;
}

async function budgetBack(baseline: number): Promise<void> {
  for (let waited = 0; requestMemory.inUse !== baseline && waited < 3000; waited += 20) await new Promise((r) => setTimeout(r, 20));
}

describe("request memory budget over HTTP", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it("a streamed PATCH waits for room before it reads its body, then appends it; a small one does not wait", async () => {
    const base = server.url;
    const body = randomBytes(200 * KiB);
    const location = await startSession(base, "mem/patch");
    const giveBack = exhaustBudget();
    let patch: Promise<{ status: number; headers: http.IncomingHttpHeaders }>;
    try {
      patch = streamed(base, "PATCH", location, body);
      assert.equal(await settlesWithin(patch, 300), false, "the PATCH waits while the budget has no room");
      const metrics = await scrape(base);
      assert.equal(value(metrics, "registry_request_memory_waiting"), 1);
      assert.equal(value(metrics, "registry_request_memory_bytes"), requestMemory.limit);
      // A chunk of stated, small length streams without asking for room.
      const other = await startSession(base, "mem/patch");
      const small = await fetch(`${base}${other}`, { method: "PATCH", body: randomBytes(10 * KiB), headers: { "Content-Type": "application/octet-stream" } });
      assert.equal(small.status, 202);
      assert.equal(small.headers.get("range"), `0-${10 * KiB - 1}`);
    } finally {
      giveBack();
    }
    const done = await patch;
    assert.equal(done.status, 202);
    assert.equal(done.headers.range, `0-${body.length - 1}`);
    const put = await fetch(`${base}${location}?digest=${sha256(body)}`, { method: "PUT" });
    assert.equal(put.status, 201);
    const pulled = await fetch(`${base}/v2/mem/patch/blobs/${sha256(body)}`);
    assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(body));
  });

  it("a manifest larger than 64 KiB waits for room for its whole body; a small one does not", async () => {
    const base = server.url;
    const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux" }));
    await pushBlob(base, "mem/manifest", config);
    const small = imageManifest(config, []);
    // An annotation makes the manifest large (a long SBOM reference list, say).
    const large = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: descriptor(OCI_CONFIG, config), layers: [], annotations: { note: "x".repeat(100 * KiB) } }),
    );
    const put = (tag: string, body: Buffer) => fetch(`${base}/v2/mem/manifest/manifests/${tag}`, { method: "PUT", body, headers: { "Content-Type": OCI_MANIFEST } });
    const giveBack = exhaustBudget();
    let pending: Promise<Response>;
    let chunked: Promise<{ status: number }>;
    try {
      pending = put("large", large);
      // With no Content-Length it reserves the most a manifest may be once it is past 64 KiB.
      chunked = streamed(base, "PUT", "/v2/mem/manifest/manifests/chunked", large, { "Content-Type": OCI_MANIFEST });
      assert.equal(await settlesWithin(pending, 300), false, "the large manifest waits while the budget has no room");
      assert.equal(await settlesWithin(chunked, 10), false);
      assert.equal((await put("small", small)).status, 201);
    } finally {
      giveBack();
    }
    assert.equal((await pending).status, 201);
    assert.equal((await chunked).status, 201);
    const got = await fetch(`${base}/v2/mem/manifest/manifests/large`, { headers: { Accept: OCI_MANIFEST } });
    assert.ok(Buffer.from(await got.arrayBuffer()).equals(large));
  });

  it("after a burst of uploads and downloads, some abandoned midway, every byte of the budget is back", async () => {
    const base = server.url;
    const baseline = requestMemory.inUse;
    const blobs = Array.from({ length: 24 }, (_, i) => randomBytes(300 * KiB + i * 4099));
    await Promise.all(
      blobs.map(async (blob, i) => {
        if (i % 3 === 0) await pushBlob(base, "mem/burst", blob);
        else {
          const location = await startSession(base, "mem/burst");
          const res = await streamed(base, "PUT", `${location}?digest=${sha256(blob)}`, blob);
          assert.equal(res.status, 201);
        }
      }),
    );
    // Uploads whose clients go away midway.
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        const location = await startSession(base, "mem/burst");
        const url = new URL(base);
        await new Promise<void>((resolve) => {
          const req = http.request({ host: url.hostname, port: url.port, method: "PATCH", path: location, headers: { "Content-Type": "application/octet-stream" } });
          req.on("error", () => resolve());
          req.write(randomBytes(256 * KiB));
          setTimeout(() => {
            req.destroy();
            resolve();
          }, 30);
        });
      }),
    );
    // Downloads, whole and abandoned.
    await Promise.all(
      blobs.map(async (blob, i) => {
        const res = await fetch(`${base}/v2/mem/burst/blobs/${sha256(blob)}`);
        if (i % 4 === 0) {
          await res.body?.cancel();
          return;
        }
        assert.ok(Buffer.from(await res.arrayBuffer()).equals(blob));
      }),
    );
    await budgetBack(baseline);
    assert.equal(requestMemory.inUse, baseline);
  });
});
