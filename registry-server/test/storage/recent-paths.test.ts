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

  it("keeps at most `capacity` paths, forgetting the first added first", () => {
    const recent = new RecentPaths(ROOT.length, 60_000, 1000);
    const paths = Array.from({ length: 1500 }, (_, i) => `${ROOT}/docker/registry/v2/blobs/sha256/${String(i % 256).padStart(2, "0")}/${i}/data`);
    for (const p of paths) recent.add(p);
    assert.equal(recent.size, 1000);
    assert.equal(paths.slice(0, 500).filter((p) => recent.has(p)).length, 0, "the first 500 are gone");
    assert.equal(paths.slice(500).filter((p) => recent.has(p)).length, 1000, "the last 1000 are kept");
    // Adding a path again refreshes its time without taking another place.
    recent.add(paths[1499]);
    assert.equal(recent.size, 1000);
  });

  it("tells apart 100,000 paths that differ only after the root (no false hits in practice)", () => {
    const recent = new RecentPaths(ROOT.length, 60_000, 100_000);
    for (let i = 0; i < 100_000; i++) recent.add(`${ROOT}/repositories/r${i}/_layers/link`);
    let falseHits = 0;
    for (let i = 100_000; i < 200_000; i++) if (recent.has(`${ROOT}/repositories/r${i}/_layers/link`)) falseHits++;
    assert.ok(falseHits <= 20, `${falseHits} false hits in 100,000 lookups`);
  });
});
