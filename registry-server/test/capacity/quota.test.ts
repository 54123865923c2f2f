// REGISTRY_STORAGE_QUOTA: pushes within it succeed; one that would exceed it is refused with 403
// DENIED before its bytes are stored, what was stored stays intact, and deleting + garbage
// collection makes room again.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it, mock } from "node:test";
import { StorageUsage } from "../../src/registry/usage";
import { collectGarbage, imageManifest, OCI_MANIFEST, pushBlob, pushImage, PushedImage, putManifest, sha256 } from "../helpers/registry";
import { startServer, TestServer } from "../helpers/server";
import { errorOf, pushBlobStreamed, RawResponse, storedBlobs, streamedRequest, uploadSizes } from "./support";

const QUOTA = 1024 * 1024;
const KiB = 1024;

async function rawOf(res: Response): Promise<RawResponse> {
  return { status: res.status, headers: {}, body: Buffer.from(await res.arrayBuffer()) };
}

function assertQuotaDenied(res: RawResponse, incomingBytes: number | undefined): void {
  assert.equal(res.status, 403, res.body.toString("utf8"));
  const err = errorOf(res);
  assert.equal(err.code, "DENIED");
  assert.match(err.message, /^storage quota exceeded: .+ of 1\.0 MiB used, /);
  assert.equal(err.detail?.quotaBytes, QUOTA);
  assert.equal(typeof err.detail?.usedBytes, "number");
  assert.equal(err.detail?.incomingBytes, incomingBytes);
}

async function assertNoUploadData(root: string): Promise<void> {
  assert.ok((await uploadSizes(root)).every((size) => size === 0), "an upload session holds data");
}

async function assertPullable(base: string, repo: string, tag: string, image: PushedImage): Promise<void> {
  const m = await fetch(`${base}/v2/${repo}/manifests/${tag}`);
  assert.equal(m.status, 200);
  assert.deepEqual(Buffer.from(await m.arrayBuffer()), image.manifest);
  for (const blob of [image.config, image.layer]) {
    const res = await fetch(`${base}/v2/${repo}/blobs/${sha256(blob)}`);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), blob);
  }
}

describe("storage quota (REGISTRY_STORAGE_QUOTA=1MiB)", () => {
  let srv: TestServer;
  let first: PushedImage;
  let second: PushedImage;

  before(async () => {
    srv = await startServer({ env: { REGISTRY_STORAGE_QUOTA: "1MiB", REGISTRY_STORAGE_MINFREE: "0", REGISTRY_GC_GRACEPERIOD: "0s" } });
  });
  after(() => srv?.close());

  it("accepts pushes within the quota", async () => {
    first = await pushImage(srv.url, "team/first", "v1", { layer: randomBytes(300 * KiB) });
    second = await pushImage(srv.url, "team/second", "v1", { layer: randomBytes(300 * KiB) });
  });

  it("refuses a monolithic push that would exceed it with 403 DENIED, before any byte is stored", async () => {
    const before = await storedBlobs(srv.root);
    const blob = randomBytes(600 * KiB);
    const res = await fetch(`${srv.url}/v2/team/third/blobs/uploads/?digest=${sha256(blob)}`, { method: "POST", body: blob });
    const raw = await rawOf(res);
    assertQuotaDenied(raw, blob.length);
    assert.match(errorOf(raw).message, /this upload needs 600\.0 KiB more$/);
    assert.equal(errorOf(raw).detail?.usedBytes, before.bytes);
    assert.deepEqual(await storedBlobs(srv.root), before);
    await assertNoUploadData(srv.root);
    assert.equal((await fetch(`${srv.url}/v2/team/third/blobs/${sha256(blob)}`, { method: "HEAD" })).status, 404);
  });

  it("refuses a PATCH chunk with a Content-Length that would exceed it, and the session keeps what it had", async () => {
    const started = await fetch(`${srv.url}/v2/team/third/blobs/uploads/`, { method: "POST" });
    assert.equal(started.status, 202);
    const location = new URL(started.headers.get("location") ?? "", srv.url).toString();
    const chunk = randomBytes(600 * KiB);
    const res = await fetch(location, { method: "PATCH", body: chunk, headers: { "Content-Range": `0-${chunk.length - 1}` } });
    assertQuotaDenied(await rawOf(res), chunk.length);
    const status = await fetch(location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get("range"), "0-0");
    assert.equal((await fetch(location, { method: "DELETE" })).status, 204);
  });

  it("refuses a streamed upload (no Content-Length) that exceeds it when it completes, and drops its bytes", async () => {
    const before = await storedBlobs(srv.root);
    const blob = randomBytes(600 * KiB);
    const refused = await pushBlobStreamed(srv.url, "team/third", blob);
    assert.ok(refused, "the streamed push was accepted");
    assertQuotaDenied(refused, blob.length);
    assert.deepEqual(await storedBlobs(srv.root), before);
    await assertNoUploadData(srv.root);
    assert.equal((await fetch(`${srv.url}/v2/team/third/blobs/${sha256(blob)}`, { method: "HEAD" })).status, 404);
  });

  it("fills up to the quota exactly, then refuses a manifest and a streamed upload", async () => {
    const { bytes } = await storedBlobs(srv.root);
    const filler = randomBytes(QUOTA - bytes);
    await pushBlob(srv.url, "team/fill", filler);
    assert.equal((await storedBlobs(srv.root)).bytes, QUOTA);

    const manifest = imageManifest(filler, [filler]);
    assertQuotaDenied(await rawOf(await putManifest(srv.url, "team/fill", "v1", manifest, OCI_MANIFEST)), manifest.length);
    assert.equal((await fetch(`${srv.url}/v2/team/fill/manifests/v1`)).status, 404);

    const started = await fetch(`${srv.url}/v2/team/fill/blobs/uploads/`, { method: "POST" });
    const location = new URL(started.headers.get("location") ?? "", srv.url).toString();
    const patched = await streamedRequest(location, "PATCH", randomBytes(KiB));
    assertQuotaDenied(patched, undefined);
    assert.match(errorOf(patched).message, /no room is left for this upload$/);
    assert.equal((await fetch(location, { method: "DELETE" })).status, 204);
  });

  it("keeps the images stored before intact and pullable", async () => {
    await assertPullable(srv.url, "team/first", "v1", first);
    await assertPullable(srv.url, "team/second", "v1", second);
  });

  it("accepts the refused push again once an image is deleted and garbage is collected", async () => {
    const deleted = await fetch(`${srv.url}/v2/team/first/manifests/${first.digest}`, { method: "DELETE" });
    assert.equal(deleted.status, 202);
    const gc = await collectGarbage(srv.url);
    assert.equal(gc.status, 200);
    await pushImage(srv.url, "team/third", "v1", { layer: randomBytes(600 * KiB) });
    await assertPullable(srv.url, "team/second", "v1", second);
    assert.ok((await storedBlobs(srv.root)).bytes <= QUOTA);
  });

  it("shares the quota with another server on the same store, counting what that one stored and deleted", async () => {
    const other = await startServer({ root: srv.root, env: { REGISTRY_STORAGE_QUOTA: "1MiB", REGISTRY_STORAGE_MINFREE: "0" } });
    try {
      const blob = randomBytes(200 * KiB);
      const push = () => fetch(`${other.url}/v2/team/other/blobs/uploads/?digest=${sha256(blob)}`, { method: "POST", body: blob });
      assertQuotaDenied(await rawOf(await push()), blob.length);
      // Freed through the first server: the other counts again before refusing, and accepts.
      const third = await fetch(`${srv.url}/v2/team/third/manifests/v1`, { method: "DELETE" });
      assert.equal(third.status, 202);
      assert.equal((await collectGarbage(srv.url)).status, 200);
      assert.equal((await push()).status, 201);
      const summary = (await (await fetch(`${srv.url}/_registry/summary`)).json()) as { totals: { bytes: number; blobs: number } };
      const stored = await storedBlobs(srv.root);
      assert.deepEqual({ bytes: summary.totals.bytes, blobs: summary.totals.blobs }, stored);
    } finally {
      await other.close();
    }
  });
});

describe("storage quota under concurrent pushes", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ env: { REGISTRY_STORAGE_QUOTA: "1MiB", REGISTRY_STORAGE_MINFREE: "0" } });
  });
  after(() => srv?.close());

  it("admits concurrent pushes only as far as they fit together", async () => {
    const blobs = Array.from({ length: 10 }, () => randomBytes(200 * KiB));
    const responses = await Promise.all(
      blobs.map(async (blob, i) => rawOf(await fetch(`${srv.url}/v2/team/c${i}/blobs/uploads/?digest=${sha256(blob)}`, { method: "POST", body: blob }))),
    );
    const accepted = responses.filter((r) => r.status === 201).length;
    assert.equal(accepted, Math.floor(QUOTA / (200 * KiB)));
    for (const refused of responses.filter((r) => r.status !== 201)) assertQuotaDenied(refused, 200 * KiB);
    assert.equal((await storedBlobs(srv.root)).bytes, accepted * 200 * KiB);
    await assertNoUploadData(srv.root);
  });
});

describe("storage quota at startup", () => {
  it("the server answers before its first walk of the store ends, and quota checks wait for that walk", async () => {
    const root = await mkdtemp(join(tmpdir(), "registry-quota-start-"));
    const first = await startServer({ root });
    await pushBlob(first.url, "team/stored", randomBytes(600 * KiB));
    await first.close();
    // The walk of the store's blobs is held until released.
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const prototype = StorageUsage.prototype as unknown as { relist(): Promise<void> };
    const relist = prototype.relist;
    const held = mock.method(prototype, "relist", async function (this: unknown) {
      await gate;
      return relist.call(this);
    });
    let timer: NodeJS.Timeout | undefined;
    const starting = startServer({ root, env: { REGISTRY_STORAGE_QUOTA: "1MiB", REGISTRY_STORAGE_MINFREE: "0" } });
    try {
      const stuck = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("the server did not answer while its first walk of the store ran")), 10_000);
      });
      const srv = await Promise.race([starting, stuck]);
      assert.equal((await Promise.race([fetch(`${srv.url}/v2/`), stuck])).status, 200);
      // 600 KiB more would exceed the quota only counting what the walk finds.
      const blob = randomBytes(600 * KiB);
      const push = fetch(`${srv.url}/v2/team/more/blobs/uploads/?digest=${sha256(blob)}`, { method: "POST", body: blob });
      const early = await Promise.race([push.then((res) => res.status), new Promise((resolve) => setTimeout(resolve, 1000, "waiting"))]);
      assert.equal(early, "waiting", "the push was answered before the walk counted what is stored");
      release();
      const raw = await rawOf(await push);
      assertQuotaDenied(raw, blob.length);
      assert.ok(Number(errorOf(raw).detail?.usedBytes) >= 600 * KiB, "the stored blob counts");
    } finally {
      clearTimeout(timer);
      release();
      held.mock.restore();
      // Started late, once released, when the server waited for the walk.
      await (await starting.catch(() => undefined))?.close();
      await rm(root, { recursive: true, force: true });
    }
  });
});
