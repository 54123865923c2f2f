import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startServer, TestServer } from "../helpers/server";
import { GcOptions } from "../../src/registry/gc";
import { OCI_INDEX, OCI_MANIFEST, imageManifest, pushBlob, pushImage, PushedImage, putManifest, sha256 } from "../helpers/registry";

let srv: TestServer;
const NOW_GRACE: GcOptions = { gracePeriodMs: 0, deleteUntagged: true };

async function blobsOnDisk(): Promise<Set<string>> {
  const root = join(srv.root, "docker/registry/v2/blobs/sha256");
  const out = new Set<string>();
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    for (const hex of await readdir(join(root, prefix))) out.add(`sha256:${hex}`);
  }
  return out;
}

async function status(path: string, method = "GET"): Promise<number> {
  return (await fetch(`${srv.url}${path}`, { method })).status;
}

/** Blobs of an image: config, layer and the manifest itself. */
function blobsOf(img: PushedImage): string[] {
  return [sha256(img.config), sha256(img.layer), img.digest];
}

async function gc(options: Partial<GcOptions> = {}) {
  // Files written within the collector's clock margin (50 ms) count as fresh; step past it.
  await new Promise((r) => setTimeout(r, 80));
  return srv.server.registry.gc.run({ ...NOW_GRACE, ...options });
}

beforeEach(async () => {
  srv = await startServer();
});
afterEach(async () => {
  await srv.close();
});

describe("garbage collection", () => {
  it("keeps tagged images and collects a deleted tag's image, its blobs and its repository", async () => {
    const kept = await pushImage(srv.url, "app", "v1");
    const dropped = await pushImage(srv.url, "gone", "v1");
    assert.equal(await status(`/v2/gone/manifests/v1`, "DELETE"), 202);

    const report = await gc();
    assert.deepEqual(report.manifestsDeleted, [`gone@${dropped.digest}`]);
    assert.deepEqual(report.repositoriesDeleted, ["gone"]);
    const disk = await blobsOnDisk();
    for (const b of blobsOf(kept)) assert.ok(disk.has(b), `kept blob ${b}`);
    for (const b of blobsOf(dropped)) assert.ok(!disk.has(b), `collected blob ${b}`);
    assert.equal(report.blobsDeleted, 3);
    assert.equal(report.bytesFreed, dropped.config.length + dropped.layer.length + dropped.manifest.length);
    assert.equal(await status(`/v2/app/manifests/v1`), 200);
    assert.equal(await status(`/v2/app/blobs/${sha256(kept.layer)}`), 200);
    const catalog = (await (await fetch(`${srv.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.deepEqual(catalog.repositories, ["app"]);
  });

  it("counts every blob it keeps and their bytes, many to a prefix directory, and every manifest of many repositories", async () => {
    // 40 images: 120 blobs over 256 prefix directories, so that some share one (looked up at once).
    const images = await Promise.all(Array.from({ length: 40 }, (_, i) => pushImage(srv.url, `many/r${i % 5}`, `t${i}`, { layer: randomBytes(100 + i) })));
    const dropped = images.slice(0, 4);
    for (const [i, img] of dropped.entries()) assert.equal(await status(`/v2/many/r${i % 5}/manifests/t${i}`, "DELETE"), 202);
    const report = await gc();
    const kept = images.slice(4);
    assert.deepEqual([...report.manifestsDeleted].sort(), dropped.map((img, i) => `many/r${i % 5}@${img.digest}`).sort());
    assert.equal(report.blobsKept, 3 * kept.length);
    assert.equal(report.bytesKept, kept.reduce((n, img) => n + img.config.length + img.layer.length + img.manifest.length, 0));
    assert.equal(report.blobsDeleted, 3 * dropped.length);
    for (const [i, img] of kept.entries()) assert.equal(await status(`/v2/many/r${(i + 4) % 5}/manifests/t${i + 4}`), 200, `image ${i + 4}`);
  });

  it("a layer shared with a kept image stays when the other image goes", async () => {
    const layer = randomBytes(500);
    const a = await pushImage(srv.url, "shared", "a", { layer });
    const b = await pushImage(srv.url, "shared", "b", { layer });
    await fetch(`${srv.url}/v2/shared/manifests/a`, { method: "DELETE" });
    const report = await gc();
    assert.deepEqual(report.manifestsDeleted, [`shared@${a.digest}`]);
    const disk = await blobsOnDisk();
    assert.ok(disk.has(sha256(layer)));
    assert.ok(!disk.has(sha256(a.config)));
    assert.ok(disk.has(sha256(b.config)));
    assert.equal(await status(`/v2/shared/blobs/${sha256(layer)}`), 200);
  });

  it("keeps the untagged children of a tagged index, and collects them with it", async () => {
    const children = [await pushImage(srv.url, "multi", undefined), await pushImage(srv.url, "multi", undefined)];
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: children.map((c) => ({ mediaType: OCI_MANIFEST, digest: c.digest, size: c.manifest.length })),
      }),
    );
    assert.equal((await putManifest(srv.url, "multi", "latest", index, OCI_INDEX)).status, 201);
    const orphan = await pushImage(srv.url, "multi", undefined);

    const first = await gc();
    assert.deepEqual(first.manifestsDeleted, [`multi@${orphan.digest}`]);
    for (const c of children) assert.equal(await status(`/v2/multi/manifests/${c.digest}`), 200);

    assert.equal(await status(`/v2/multi/manifests/latest`, "DELETE"), 202);
    const second = await gc();
    assert.deepEqual(second.manifestsDeleted.sort(), [sha256(index), ...children.map((c) => c.digest)].map((d) => `multi@${d}`).sort());
    assert.deepEqual([...(await blobsOnDisk())], []);
  });

  it("keeps referrers of a kept subject and collects referrers of a deleted subject", async () => {
    const subject = await pushImage(srv.url, "signed", "v1");
    const other = await pushImage(srv.url, "signed", "v2");
    const sig = Buffer.from("signature");
    const cfg = Buffer.from("{}");
    await pushBlob(srv.url, "signed", sig);
    await pushBlob(srv.url, "signed", cfg);
    const referrerOf = async (s: PushedImage, note: string) => {
      const body = imageManifest(cfg, [sig], {
        artifactType: "application/vnd.example.sig",
        configMediaType: "application/vnd.oci.empty.v1+json",
        subject: { mediaType: OCI_MANIFEST, digest: s.digest, size: s.manifest.length },
        annotations: { note },
      });
      assert.equal((await putManifest(srv.url, "signed", sha256(body), body, OCI_MANIFEST)).status, 201);
      return sha256(body);
    };
    const keptSig = await referrerOf(subject, "kept");
    const goneSig = await referrerOf(other, "gone");
    assert.equal(await status(`/v2/signed/manifests/${other.digest}`, "DELETE"), 202);

    const report = await gc();
    assert.deepEqual(report.manifestsDeleted.sort(), [`signed@${goneSig}`].sort());
    assert.equal(await status(`/v2/signed/manifests/${keptSig}`), 200);
    assert.equal(await status(`/v2/signed/manifests/${goneSig}`), 404);
    const refs = (await (await fetch(`${srv.url}/v2/signed/referrers/${subject.digest}`)).json()) as { manifests: { digest: string }[] };
    assert.deepEqual(
      refs.manifests.map((m) => m.digest),
      [keptSig],
    );
    assert.ok((await blobsOnDisk()).has(sha256(sig)), "the signature layer is still used by the kept referrer");
  });

  it("keeps a blob uploaded but not yet referenced while it is within the grace period", async () => {
    const pending = await pushBlob(srv.url, "inflight", randomBytes(1000));
    const report = await gc({ gracePeriodMs: 60_000 });
    assert.equal(report.blobsDeleted, 0);
    assert.equal(report.layerLinksDeleted, 0);
    assert.equal(await status(`/v2/inflight/blobs/${pending}`, "HEAD"), 200);
    // The push then completes: the manifest is accepted and served.
    const config = Buffer.from("{}");
    await pushBlob(srv.url, "inflight", config);
    const layer = await (await fetch(`${srv.url}/v2/inflight/blobs/${pending}`)).arrayBuffer();
    const body = imageManifest(config, [Buffer.from(layer)]);
    assert.equal((await putManifest(srv.url, "inflight", "v1", body, OCI_MANIFEST)).status, 201);
  });

  it("keeps a blob completed just now even if its upload's last PATCH was long ago", async () => {
    const content = randomBytes(2000);
    const post = await fetch(`${srv.url}/v2/slow/blobs/uploads/`, { method: "POST" });
    const location = post.headers.get("location") ?? "";
    assert.equal((await fetch(`${srv.url}${location}`, { method: "PATCH", body: content })).status, 202);
    const id = location.split("/").pop() ?? "";
    const past = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(srv.root, "docker/registry/v2/repositories/slow/_uploads", id), past, past);
    const completed = Date.now();
    assert.equal((await fetch(`${srv.url}${location}?digest=${sha256(content)}`, { method: "PUT" })).status, 201);
    // The blob is stamped when it is published, not when its data was last written: a collection
    // that marked this repository before the PUT sees a fresh blob in its sweep.
    const hex = sha256(content).slice(7);
    const blobTime = (await stat(join(srv.root, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data"))).mtimeMs;
    assert.ok(blobTime >= completed - 1000, `blob stamped ${Math.round((completed - blobTime) / 1000)} s before its PUT`);
    const report = await gc({ gracePeriodMs: 3_600_000 });
    assert.equal(report.blobsDeleted, 0);
    assert.equal(await status(`/v2/slow/blobs/${sha256(content)}`, "HEAD"), 200);
  });

  it("collects an unreferenced blob past the grace period, and its link", async () => {
    const stale = await pushBlob(srv.url, "stale", randomBytes(1000));
    const report = await gc({ gracePeriodMs: 0 });
    assert.equal(report.blobsDeleted, 1);
    assert.equal(report.layerLinksDeleted, 1);
    assert.deepEqual(report.repositoriesDeleted, ["stale"]);
    assert.equal(await status(`/v2/stale/blobs/${stale}`, "HEAD"), 404);
  });

  it("a dry run reports what would go and deletes nothing", async () => {
    const img = await pushImage(srv.url, "dry", "v1");
    await fetch(`${srv.url}/v2/dry/manifests/v1`, { method: "DELETE" });
    const before = await blobsOnDisk();
    const report = await gc({ dryRun: true });
    assert.equal(report.dryRun, true);
    assert.deepEqual(report.manifestsDeleted, [`dry@${img.digest}`]);
    assert.equal(report.blobsDeleted, 3);
    assert.deepEqual(await blobsOnDisk(), before);
    assert.equal(await status(`/v2/dry/manifests/${img.digest}`), 200);
  });

  it("keeps untagged manifests when deleteUntagged is off", async () => {
    const img = await pushImage(srv.url, "keepall", undefined);
    const report = await gc({ deleteUntagged: false });
    assert.deepEqual(report.manifestsDeleted, []);
    assert.equal(await status(`/v2/keepall/manifests/${img.digest}`), 200);
  });

  it("purges upload sessions idle for longer than the configured age", async () => {
    const fresh = (await fetch(`${srv.url}/v2/uploads/blobs/uploads/`, { method: "POST" })).headers.get("location") ?? "";
    const old = (await fetch(`${srv.url}/v2/uploads/blobs/uploads/`, { method: "POST" })).headers.get("location") ?? "";
    const oldId = old.split("/").pop() ?? "";
    const past = new Date(Date.now() - 3 * 3_600_000);
    await utimes(join(srv.root, "docker/registry/v2/repositories/uploads/_uploads", oldId), past, past);
    const report = await gc({ uploadMaxAgeMs: 3_600_000 });
    assert.equal(report.uploadsPurged, 1);
    assert.equal(await status(old), 404);
    assert.equal(await status(fresh), 204);
  });

  it("a session directory registry:2 left is not resumed and is purged by its data's age", async () => {
    await pushImage(srv.url, "legacy", "v1");
    const id = "0b5c8e4e-3f0a-4c55-9d7e-2a4f5c6d7e8f";
    const dir = join(srv.root, "docker/registry/v2/repositories/legacy/_uploads", id);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "data"), "partial");
    await writeFile(join(dir, "startedat"), new Date().toISOString());
    assert.equal(await status(`/v2/legacy/blobs/uploads/${id}`), 404);
    assert.equal((await gc({ uploadMaxAgeMs: 3_600_000 })).uploadsPurged, 0);
    const past = new Date(Date.now() - 3 * 3_600_000);
    await utimes(join(dir, "data"), past, past);
    assert.equal((await gc({ uploadMaxAgeMs: 3_600_000 })).uploadsPurged, 1);
    assert.deepEqual(await readdir(join(srv.root, "docker/registry/v2/repositories/legacy/_uploads")), []);
  });

  it("POST /_registry/gc runs a collection and answers the report", async () => {
    await pushImage(srv.url, "admin", "v1");
    const res = await fetch(`${srv.url}/_registry/gc?dryRun=true`, { method: "POST" });
    assert.equal(res.status, 200);
    const report = (await res.json()) as { dryRun: boolean; blobsKept: number };
    assert.equal(report.dryRun, true);
    assert.equal(report.blobsKept, 3);
    const bad = await fetch(`${srv.url}/_registry/gc?dryRun=perhaps`, { method: "POST" });
    assert.equal(bad.status, 400);
  });
});

describe("retention policies", () => {
  async function tagAt(repo: string, tag: string, img: PushedImage, hoursAgo: number): Promise<void> {
    assert.equal((await putManifest(srv.url, repo, tag, img.manifest, img.mediaType)).status, 201);
    const t = new Date(Date.now() - hoursAgo * 3_600_000);
    await utimes(join(srv.root, `docker/registry/v2/repositories/${repo}/_manifests/tags/${tag}/current/link`), t, t);
  }

  it("keeps the N most recent tags and tags matching the pattern, drops the rest, then collects", async () => {
    const imgs: PushedImage[] = [];
    for (let i = 0; i < 5; i++) imgs.push(await pushImage(srv.url, "team/app", undefined));
    await tagAt("team/app", "build-1", imgs[0], 50);
    await tagAt("team/app", "build-2", imgs[1], 40);
    await tagAt("team/app", "v1.0.0", imgs[2], 30);
    await tagAt("team/app", "build-4", imgs[3], 20);
    await tagAt("team/app", "build-5", imgs[4], 10);
    await pushImage(srv.url, "other", "build-1");
    const retention = [{ repositories: "team/*", keepLast: 2, keepTags: "^v\\d" }];

    const dry = await gc({ dryRun: true, retention });
    assert.deepEqual(dry.tagsDeleted, ["team/app:build-1", "team/app:build-2"]);
    assert.equal(await status(`/v2/team/app/manifests/build-1`), 200, "a dry run deletes no tag");
    assert.deepEqual(dry.manifestsDeleted.sort(), [imgs[0].digest, imgs[1].digest].map((d) => `team/app@${d}`).sort());

    const report = await gc({ retention });
    assert.deepEqual(report.tagsDeleted, ["team/app:build-1", "team/app:build-2"]);
    assert.deepEqual(report.manifestsDeleted.sort(), [imgs[0].digest, imgs[1].digest].map((d) => `team/app@${d}`).sort());
    const tags = ((await (await fetch(`${srv.url}/v2/team/app/tags/list`)).json()) as { tags: string[] }).tags;
    assert.deepEqual(tags, ["build-4", "build-5", "v1.0.0"]);
    assert.equal(await status(`/v2/other/manifests/build-1`), 200, "other repositories are not matched");
  });

  it("drops tags older than a duration", async () => {
    const a = await pushImage(srv.url, "aged", undefined);
    const b = await pushImage(srv.url, "aged", undefined);
    await tagAt("aged", "old", a, 24 * 8);
    await tagAt("aged", "new", b, 1);
    const report = await gc({ retention: [{ repositories: "**", olderThanMs: 7 * 86_400_000 }] });
    assert.deepEqual(report.tagsDeleted, ["aged:old"]);
    assert.equal(await status(`/v2/aged/manifests/new`), 200);
  });
});
