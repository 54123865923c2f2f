// The driver's memory of recent paths: a hint of which lookups can be made on the event loop.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RecentPaths } from "../../src/storage/recent-paths";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ROOT = "/var/lib/registry";

describe("recent paths", () => {
  it("knows a path for maxAge, then forgets it; forget and add again work", async () => {
    const recent = new RecentPaths(ROOT.length, 60, 100);
    const p = `${ROOT}/docker/registry/v2/repositories/app/_manifests/tags/v1/current/link`;
    assert.equal(recent.has(p), false);
    recent.add(p);
    assert.equal(recent.has(p), true);
    assert.equal(recent.has(`${p}x`), false, "another path");
    assert.equal(recent.has(p.replace("/v1/", "/v2/")), false, "a path of the same length");
    recent.forget(p);
    assert.equal(recent.has(p), false);
    recent.add(p);
    await sleep(90);
    assert.equal(recent.has(p), false, "too old");
    assert.equal(recent.size, 0, "an expired path found is dropped");
  });

  it("holds about `capacity` paths, crowding out those seen longest ago", () => {
    const recent = new RecentPaths(ROOT.length, 60_000, 1000);
    const paths = Array.from({ length: 5000 }, (_, i) => `${ROOT}/docker/registry/v2/blobs/sha256/${String(i % 256).padStart(2, "0")}/${i}/data`);
    for (const p of paths.slice(0, 1000)) recent.add(p);
    const kept = (some: string[]) => some.filter((p) => recent.has(p)).length;
    assert.ok(kept(paths.slice(0, 1000)) >= 900, `${kept(paths.slice(0, 1000))} of 1000 kept when it was meant to hold 1000`);
    for (const p of paths.slice(1000)) recent.add(p);
    assert.ok(recent.size <= 2048, "the table never grows");
    assert.ok(kept(paths.slice(4500)) >= 475, `${kept(paths.slice(4500))} of the last 500 kept`);
    assert.ok(kept(paths.slice(0, 500)) <= 50, `${kept(paths.slice(0, 500))} of the first 500 still there after 4000 more`);
    // A path seen again is refreshed in place (no second slot) and outlives those seen once.
    const size = recent.size;
    recent.add(paths[4999]);
    assert.equal(recent.size, size);
  });

  it("a path just added is never crowded out by the next one", () => {
    const recent = new RecentPaths(ROOT.length, 60_000, 64);
    const keep = `${ROOT}/docker/registry/v2/repositories/app/_manifests/tags`;
    for (let i = 0; i < 10_000; i++) {
      recent.add(keep);
      recent.add(`${ROOT}/docker/registry/v2/repositories/r${i}/_layers`);
      assert.ok(recent.has(keep), `lost to r${i}`);
    }
  });

  it("a path looked up between additions is never crowded out (the one of its set used longest ago goes)", () => {
    // A blob prefix directory: every new blob goes through it, none adds it again.
    const known = new RecentPaths(ROOT.length, Infinity, 64);
    const prefix = `${ROOT}/docker/registry/v2/blobs/sha256/c9`;
    known.add(prefix);
    for (let i = 0; i < 10_000; i++) {
      assert.ok(known.has(prefix), `lost after ${i} additions`);
      known.add(`${ROOT}/docker/registry/v2/blobs/sha256/c9/${i}`);
    }
  });

  it("keeps paths for good with an infinite maxAge", () => {
    const known = new RecentPaths(ROOT.length, Infinity, 16);
    known.add(`${ROOT}/docker/registry/v2/blobs`);
    assert.equal(known.has(`${ROOT}/docker/registry/v2/blobs`), true);
    known.forget(`${ROOT}/docker/registry/v2/blobs`);
    assert.equal(known.has(`${ROOT}/docker/registry/v2/blobs`), false);
    assert.equal(known.size, 0);
  });

  it("tells apart 100,000 paths that differ only after the root (no false hits in practice)", () => {
    const recent = new RecentPaths(ROOT.length, 60_000, 100_000);
    for (let i = 0; i < 100_000; i++) recent.add(`${ROOT}/repositories/r${i}/_layers/link`);
    let falseHits = 0;
    for (let i = 100_000; i < 200_000; i++) if (recent.has(`${ROOT}/repositories/r${i}/_layers/link`)) falseHits++;
    assert.ok(falseHits <= 20, `${falseHits} false hits in 100,000 lookups`);
  });
});
