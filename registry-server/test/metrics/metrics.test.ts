// GET /metrics (Prometheus) and GET /_registry/summary, after pushes, pulls, 404s and a garbage
// collection on a real server.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { collectGarbage, pushImage, PushedImage, sha256 } from "../helpers/registry";
import { startServer, TestServer } from "../helpers/server";
import { storedBlobs } from "../capacity/support";
import { has, scrape, value } from "./prometheus";

const REQUESTS = "registry_http_requests_total";

interface Summary {
  repositories: { name: string; tags: number; manifests: number; bytes: number }[];
  totals: { repositories: number; tags: number; manifests: number; blobs: number; bytes: number };
  volume: { freeBytes: number | null; quotaBytes: number | null };
}

async function get(url: string, init?: RequestInit): Promise<Response> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res;
}

function imageBytes(images: PushedImage[]): number {
  const distinct = new Map<string, number>();
  for (const i of images) for (const b of [i.manifest, i.config, i.layer]) distinct.set(sha256(b), b.length);
  return [...distinct.values()].reduce((a, b) => a + b, 0);
}

describe("GET /metrics and GET /_registry/summary", () => {
  let srv: TestServer;
  let app1: PushedImage;
  let app2: PushedImage;
  let lib: PushedImage;
  const shared = randomBytes(64 * 1024);

  before(async () => {
    srv = await startServer({ env: { REGISTRY_GC_GRACEPERIOD: "0s" } });
    app1 = await pushImage(srv.url, "team/app", "v1", { layer: shared });
    app2 = await pushImage(srv.url, "team/app", "v2", { layer: randomBytes(32 * 1024) });
    lib = await pushImage(srv.url, "team/lib", "1.0", { layer: shared });
    assert.equal((await get(`${srv.url}/v2/team/app/manifests/v1`)).status, 200);
    assert.equal((await get(`${srv.url}/v2/team/app/blobs/${sha256(shared)}`)).status, 200);
    assert.equal((await get(`${srv.url}/v2/team/lib/blobs/${sha256(shared)}`)).status, 200);
    assert.equal((await get(`${srv.url}/v2/team/app/manifests/missing`)).status, 404);
    assert.equal((await get(`${srv.url}/v2/team/app/blobs/sha256:${"0".repeat(64)}`)).status, 404);
    assert.equal((await get(`${srv.url}/nowhere`)).status, 404);
  });
  after(() => srv?.close());

  it("counts requests by route, method and status", async () => {
    const s = await scrape(srv.url);
    assert.equal(value(s, REQUESTS, { route: "uploads", method: "POST", status: "201" }), 6);
    assert.equal(value(s, REQUESTS, { route: "manifest", method: "PUT", status: "201" }), 3);
    assert.equal(value(s, REQUESTS, { route: "manifest", method: "GET", status: "200" }), 1);
    assert.equal(value(s, REQUESTS, { route: "manifest", method: "GET", status: "404" }), 1);
    assert.equal(value(s, REQUESTS, { route: "blob", method: "GET", status: "200" }), 2);
    assert.equal(value(s, REQUESTS, { route: "blob", method: "GET", status: "404" }), 1);
    assert.equal(value(s, REQUESTS, { route: "unknown", method: "GET", status: "404" }), 1);
    assert.equal(value(s, "registry_http_request_duration_seconds_count", { route: "manifest", method: "PUT" }), 3);
    assert.equal(value(s, "registry_blob_upload_duration_seconds_count"), 6);
  });

  it("counts at least the bytes pushed in and pulled out", async () => {
    const s = await scrape(srv.url);
    const blobsPushed = [app1, app2, lib].reduce((n, i) => n + i.config.length + i.layer.length, 0);
    const manifestsPushed = [app1, app2, lib].reduce((n, i) => n + i.manifest.length, 0);
    assert.ok(value(s, "registry_http_received_bytes_total", { route: "uploads" }) >= blobsPushed);
    assert.ok(value(s, "registry_http_received_bytes_total", { route: "manifest" }) >= manifestsPushed);
    assert.ok(value(s, "registry_http_sent_bytes_total", { route: "blob" }) >= 2 * shared.length);
    assert.ok(value(s, "registry_http_sent_bytes_total", { route: "manifest" }) >= app1.manifest.length);
  });

  it("exposes storage gauges equal to what is stored, the volume's free bytes and the process metrics", async () => {
    const s = await scrape(srv.url);
    const stored = await storedBlobs(srv.root);
    assert.equal(stored.bytes, imageBytes([app1, app2, lib]));
    assert.equal(value(s, "registry_storage_bytes"), stored.bytes);
    assert.equal(value(s, "registry_storage_objects", { kind: "blobs" }), stored.blobs);
    assert.equal(value(s, "registry_storage_objects", { kind: "repositories" }), 2);
    assert.equal(value(s, "registry_storage_objects", { kind: "manifests" }), 3);
    assert.equal(value(s, "registry_storage_objects", { kind: "tags" }), 3);
    assert.ok(value(s, "registry_volume_free_bytes") > 0);
    assert.equal(has(s, "registry_storage_quota_bytes"), false);
    for (const name of ["process_resident_memory_bytes", "nodejs_heap_size_used_bytes", "nodejs_eventloop_lag_seconds"]) {
      assert.ok(has(s, name), `${name} is missing`);
    }
  });

  it("summarises each repository's tags, manifests and referenced bytes, and the store's totals", async () => {
    const res = await fetch(`${srv.url}/_registry/summary`);
    assert.equal(res.status, 200);
    const summary = (await res.json()) as Summary;
    const stored = await storedBlobs(srv.root);
    assert.deepEqual(summary.repositories, [
      { name: "team/app", tags: 2, manifests: 2, bytes: imageBytes([app1, app2]) },
      { name: "team/lib", tags: 1, manifests: 1, bytes: imageBytes([lib]) },
    ]);
    assert.deepEqual(summary.totals, { repositories: 2, tags: 3, manifests: 3, blobs: stored.blobs, bytes: stored.bytes });
    assert.ok(summary.volume.freeBytes !== null && summary.volume.freeBytes > 0);
    assert.equal(summary.volume.quotaBytes, null);
  });

  it("counts garbage collection runs, freed bytes and deleted objects, and the storage gauges follow", async () => {
    assert.equal((await get(`${srv.url}/v2/team/app/manifests/${app2.digest}`, { method: "DELETE" })).status, 202);
    assert.equal((await get(`${srv.url}/_registry/gc?dryRun=true`, { method: "POST" })).status, 200);
    const res = await collectGarbage(srv.url);
    const report = (await res.json()) as { bytesFreed: number; blobsDeleted: number };
    assert.equal(report.blobsDeleted, 3);
    assert.equal(report.bytesFreed, imageBytes([app2]));

    const s = await scrape(srv.url);
    assert.equal(value(s, "registry_gc_runs_total", { dry_run: "true" }), 1);
    assert.equal(value(s, "registry_gc_runs_total", { dry_run: "false" }), 1);
    assert.equal(value(s, "registry_gc_freed_bytes_total"), report.bytesFreed);
    assert.equal(value(s, "registry_gc_deleted_objects_total", { kind: "blobs" }), 3);
    const stored = await storedBlobs(srv.root);
    assert.equal(stored.bytes, imageBytes([app1, lib]));
    assert.equal(value(s, "registry_storage_bytes"), stored.bytes);
    assert.equal(value(s, "registry_storage_objects", { kind: "blobs" }), stored.blobs);
    assert.equal(value(s, "registry_storage_objects", { kind: "manifests" }), 2);
    assert.equal(value(s, "registry_storage_objects", { kind: "tags" }), 2);
  });
});

describe("metrics per server", () => {
  let disabled: TestServer;
  let enabled: TestServer;

  before(async () => {
    [disabled, enabled] = await Promise.all([startServer({ env: { REGISTRY_METRICS_ENABLED: "false" } }), startServer()]);
  });
  after(() => Promise.all([disabled?.close(), enabled?.close()]));

  it("answers GET /metrics with 404 when REGISTRY_METRICS_ENABLED=false, and still serves the summary", async () => {
    const res = await fetch(`${disabled.url}/metrics`);
    assert.equal(res.status, 404);
    const body = (await res.json()) as { errors: { code: string }[] };
    assert.equal(body.errors[0].code, "NOT_FOUND");
    assert.equal((await get(`${disabled.url}/_registry/summary`)).status, 200);
  });

  it("keeps each server's metrics apart when several run in one process", async () => {
    await pushImage(disabled.url, "only/there", "v1");
    assert.equal((await get(`${enabled.url}/v2/`)).status, 200);
    const s = await scrape(enabled.url);
    assert.equal(value(s, REQUESTS, { route: "base", method: "GET", status: "200" }), 1);
    assert.equal(value(s, REQUESTS, { route: "manifest", method: "PUT", status: "201" }), 0);
    assert.equal(value(s, "registry_storage_objects", { kind: "repositories" }), 0);
  });
});
