// A registry on a volume that fills up: an 8 MiB tmpfs (mounting needs root; without it these
// tests fail rather than skip). Pushes go on until refused; a refusal is a clean 507 DENIED,
// whether the write hit ENOSPC or REGISTRY_STORAGE_MINFREE refused it first; what was
// acknowledged stays intact, nothing half-written is served, and deleting + garbage collection
// makes room again.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { collectGarbage, imageManifest, OCI_MANIFEST, putManifest, sha256 } from "../helpers/registry";
import { startServer, TestServer } from "../helpers/server";
import { scrape } from "../metrics/prometheus";
import { errorOf, pushBlobStreamed, RawResponse } from "./support";

const MiB = 1024 * 1024;

interface Image {
  repo: string;
  tag: string;
  manifest: Buffer;
  config: Buffer;
  layer: Buffer;
}

/** Pushes one blob; answers the refusal, or undefined when it was accepted. */
type PushBlob = (base: string, repo: string, content: Buffer) => Promise<RawResponse | undefined>;

async function pushBlobMonolithic(base: string, repo: string, content: Buffer): Promise<RawResponse | undefined> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${sha256(content)}`, { method: "POST", body: content });
  return res.status === 201 ? undefined : { status: res.status, headers: {}, body: Buffer.from(await res.arrayBuffer()) };
}

/** Pushes config, layer and manifest; answers the first refusal, or undefined when all was accepted. */
async function pushImage(base: string, image: Image, pushBlob: PushBlob): Promise<RawResponse | undefined> {
  const refused = (await pushBlob(base, image.repo, image.config)) ?? (await pushBlob(base, image.repo, image.layer));
  if (refused) return refused;
  const res = await putManifest(base, image.repo, image.tag, image.manifest, OCI_MANIFEST);
  return res.status === 201 ? undefined : { status: res.status, headers: {}, body: Buffer.from(await res.arrayBuffer()) };
}

function newImage(i: number, layerBytes: number): Image {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", n: i }));
  const layer = randomBytes(layerBytes);
  return { repo: `fill/app${i}`, tag: "v1", config, layer, manifest: imageManifest(config, [layer]) };
}

/** Pushes images until one is refused; answers the accepted ones and the refusal. */
async function fillUp(base: string, first: number, layerBytes: number, pushBlob: PushBlob): Promise<{ accepted: Image[]; refused: RawResponse; refusedImage: Image }> {
  const accepted: Image[] = [];
  for (let i = first; i < first + 64; i++) {
    const image = newImage(i, layerBytes);
    const refused = await pushImage(base, image, pushBlob);
    if (refused) return { accepted, refused, refusedImage: image };
    accepted.push(image);
  }
  throw new Error("64 images fitted on an 8 MiB volume: nothing was refused");
}

function assertVolumeFull(res: RawResponse): void {
  assert.equal(res.status, 507, `refusal answered ${res.status}: ${res.body.toString("utf8")}`);
  const err = errorOf(res);
  assert.equal(err.code, "DENIED");
  assert.match(err.message, /^the registry's volume is full/);
}

async function assertIntact(base: string, image: Image): Promise<void> {
  const m = await fetch(`${base}/v2/${image.repo}/manifests/${image.tag}`);
  assert.equal(m.status, 200, `${image.repo}:${image.tag}`);
  assert.deepEqual(Buffer.from(await m.arrayBuffer()), image.manifest);
  for (const blob of [image.config, image.layer]) {
    const res = await fetch(`${base}/v2/${image.repo}/blobs/${sha256(blob)}`);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), blob, `a blob of ${image.repo} changed`);
  }
}

/** A blob of a refused push is either absent or whole: never served half-written. */
async function assertNotHalfServed(base: string, image: Image): Promise<void> {
  for (const blob of [image.config, image.layer]) {
    const res = await fetch(`${base}/v2/${image.repo}/blobs/${sha256(blob)}`);
    if (res.status === 404) {
      await res.arrayBuffer();
      continue;
    }
    assert.equal(res.status, 200);
    assert.equal(sha256(Buffer.from(await res.arrayBuffer())), sha256(blob));
  }
  const m = await fetch(`${base}/v2/${image.repo}/manifests/${image.tag}`);
  assert.equal(m.status, 404, "the manifest of a refused push was stored");
  await m.arrayBuffer();
}

async function deleteAndCollect(base: string, images: Image[]): Promise<void> {
  for (const image of images) {
    const res = await fetch(`${base}/v2/${image.repo}/manifests/${sha256(image.manifest)}`, { method: "DELETE" });
    assert.equal(res.status, 202);
  }
  const gc = await collectGarbage(base);
  assert.equal(gc.status, 200, await gc.text());
  await gc.arrayBuffer().catch(() => undefined);
}

/** A server over a fresh directory on the volume; closing it removes the directory. */
async function startOnVolume(mountPoint: string, name: string, env: Record<string, string>): Promise<TestServer> {
  const root = await mkdtemp(path.join(mountPoint, `${name}-`));
  const srv = await startServer({ root, env: { REGISTRY_GC_GRACEPERIOD: "0s", ...env } });
  return {
    ...srv,
    close: async () => {
      await srv.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

describe("a registry on a volume that fills up (8 MiB tmpfs)", () => {
  let mountPoint = "";
  let mounted = false;

  before(async () => {
    mountPoint = await mkdtemp(path.join(tmpdir(), "registry-full-"));
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mountPoint], { stdio: "pipe" });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new Error(`these tests need a small tmpfs and so must run as root (mount -t tmpfs failed: ${why})`);
    }
    mounted = true;
  });
  after(async () => {
    if (mounted) execFileSync("umount", [mountPoint]);
    if (mountPoint !== "") await rm(mountPoint, { recursive: true, force: true });
  });

  describe("when writes hit ENOSPC (REGISTRY_STORAGE_MINFREE=0, streamed layers as docker pushes them)", () => {
    let srv: TestServer;
    let accepted: Image[] = [];
    let refusedImage: Image;

    before(async () => {
      srv = await startOnVolume(mountPoint, "enospc", { REGISTRY_STORAGE_MINFREE: "0" });
    });
    after(() => srv?.close());

    it("answers the push that does not fit with 507 DENIED, never a 500", async () => {
      const filled = await fillUp(srv.url, 0, MiB, pushBlobStreamed);
      accepted = filled.accepted;
      refusedImage = filled.refusedImage;
      assert.ok(accepted.length >= 4, `only ${accepted.length} images fitted`);
      assertVolumeFull(filled.refused);
      // The free-space check lets a streamed body through (its size is unknown): the write's ENOSPC refused it.
      assert.equal(errorOf(filled.refused).message, "the registry's volume is full; nothing was stored");
    });

    it("keeps every acknowledged image intact byte for byte, serves nothing half-written, and leaves no temporary", async () => {
      for (const image of accepted) await assertIntact(srv.url, image);
      await assertNotHalfServed(srv.url, refusedImage);
      assert.deepEqual(await readdir(path.join(srv.root, ".tmp")), []);
    });

    it("accepts pushes again once images are deleted and garbage is collected", async () => {
      await deleteAndCollect(srv.url, accepted.slice(0, 3));
      const image = newImage(100, MiB);
      assert.equal(await pushImage(srv.url, image, pushBlobStreamed), undefined);
      for (const kept of [...accepted.slice(3), image]) await assertIntact(srv.url, kept);
    });

    it("answered no request of the whole run with a 5xx other than 507", async () => {
      const statuses = [...(await scrape(srv.url)).keys()].filter((k) => k.startsWith("registry_http_requests_total{")).map((k) => /status="(\d+)"/.exec(k)?.[1]);
      assert.deepEqual(statuses.filter((s) => s !== undefined && s.startsWith("5") && s !== "507"), []);
      assert.ok(statuses.includes("507"));
    });
  });

  describe("when REGISTRY_STORAGE_MINFREE refuses first (monolithic layers)", () => {
    let srv: TestServer;

    before(async () => {
      srv = await startOnVolume(mountPoint, "minfree", { REGISTRY_STORAGE_MINFREE: "2MiB" });
    });
    after(() => srv?.close());

    it("refuses with 507 DENIED before writing, keeps the images, and recovers after garbage collection", async () => {
      const { accepted, refused, refusedImage } = await fillUp(srv.url, 200, MiB, pushBlobMonolithic);
      assert.ok(accepted.length >= 2, `only ${accepted.length} images fitted`);
      assertVolumeFull(refused);
      const { detail } = errorOf(refused);
      assert.equal(detail?.minFreeBytes, 2 * MiB);
      assert.equal(detail?.incomingBytes, MiB);
      for (const image of accepted) await assertIntact(srv.url, image);
      await assertNotHalfServed(srv.url, refusedImage);

      await deleteAndCollect(srv.url, accepted.slice(0, 2));
      const image = newImage(300, MiB);
      assert.equal(await pushImage(srv.url, image, pushBlobMonolithic), undefined);
      for (const kept of [...accepted.slice(2), image]) await assertIntact(srv.url, kept);
    });
  });
});
