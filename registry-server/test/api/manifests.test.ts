import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startServer, TestServer } from "../helpers/server";
import {
  DOCKER_LIST,
  DOCKER_MANIFEST,
  errorCode,
  imageManifest,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_MANIFEST,
  pushBlob,
  pushImage,
  putManifest,
  rawRequest,
  sha256,
} from "../helpers/registry";

let srv: TestServer;
before(async () => {
  srv = await startServer();
});
after(async () => {
  await srv.close();
});

function indexOf(mediaType: string, children: { digest: string; size: number; mediaType: string }[], extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      manifests: children.map((c, i) => ({ ...c, platform: { architecture: i === 0 ? "amd64" : "arm64", os: "linux" } })),
      ...extra,
    }),
  );
}

async function getManifest(repo: string, ref: string, accept?: string): Promise<Response> {
  return fetch(`${srv.url}/v2/${repo}/manifests/${ref}`, { headers: accept ? { Accept: accept } : {} });
}

describe("manifest push and pull", () => {
  for (const mediaType of [OCI_MANIFEST, DOCKER_MANIFEST]) {
    it(`round-trips an image manifest of type ${mediaType} byte for byte`, async () => {
      const img = await pushImage(srv.url, "images", `t-${mediaType === OCI_MANIFEST ? "oci" : "docker"}`, { mediaType });
      for (const ref of [`t-${mediaType === OCI_MANIFEST ? "oci" : "docker"}`, img.digest]) {
        const res = await getManifest("images", ref);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("content-type"), mediaType);
        assert.equal(res.headers.get("docker-content-digest"), img.digest);
        assert.equal(res.headers.get("content-length"), String(img.manifest.length));
        assert.deepEqual(Buffer.from(await res.arrayBuffer()), img.manifest);
        const head = await fetch(`${srv.url}/v2/images/manifests/${ref}`, { method: "HEAD" });
        assert.equal(head.status, 200);
        assert.equal(head.headers.get("docker-content-digest"), img.digest);
        assert.equal(head.headers.get("content-length"), String(img.manifest.length));
      }
    });
  }

  for (const [indexType, childType] of [
    [OCI_INDEX, OCI_MANIFEST],
    [DOCKER_LIST, DOCKER_MANIFEST],
  ]) {
    it(`stores an index of type ${indexType} whose children were pushed first`, async () => {
      const a = await pushImage(srv.url, "multi", undefined, { mediaType: childType });
      const b = await pushImage(srv.url, "multi", undefined, { mediaType: childType });
      const index = indexOf(indexType, [
        { mediaType: childType, digest: a.digest, size: a.manifest.length },
        { mediaType: childType, digest: b.digest, size: b.manifest.length },
      ]);
      const put = await putManifest(srv.url, "multi", "latest", index, indexType);
      assert.equal(put.status, 201, await put.text());
      assert.equal(put.headers.get("docker-content-digest"), sha256(index));
      assert.equal(put.headers.get("location"), `/v2/multi/manifests/${sha256(index)}`);
      const res = await getManifest("multi", "latest");
      assert.equal(res.headers.get("content-type"), indexType);
      assert.deepEqual(Buffer.from(await res.arrayBuffer()), index);
    });
  }

  it("answers the stored type even when Accept excludes it (unlike distribution 2.8)", async () => {
    const img = await pushImage(srv.url, "accept", "v1");
    const res = await getManifest("accept", "v1", DOCKER_MANIFEST);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), OCI_MANIFEST);
    assert.equal(res.headers.get("docker-content-digest"), img.digest);
  });

  it("stores an OCI artifact with artifactType and the empty config", async () => {
    const empty = Buffer.from("{}");
    await pushBlob(srv.url, "artifacts", empty);
    const payload = randomBytes(64);
    await pushBlob(srv.url, "artifacts", payload);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType: "application/vnd.example.sbom.v1",
        config: { mediaType: OCI_EMPTY, digest: sha256(empty), size: 2, data: "e30=" },
        layers: [{ mediaType: "application/vnd.example.sbom.layer", digest: sha256(payload), size: payload.length }],
      }),
    );
    const put = await putManifest(srv.url, "artifacts", "sbom", manifest, OCI_MANIFEST);
    assert.equal(put.status, 201, await put.text());
    const res = await getManifest("artifacts", "sbom");
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), manifest);
  });

  it("keeps the header's type for a body without mediaType and answers with it", async () => {
    const config = Buffer.from("{}");
    const layer = randomBytes(10);
    await pushBlob(srv.url, "notype", config);
    await pushBlob(srv.url, "notype", layer);
    const doc = JSON.parse(imageManifest(config, [layer]).toString()) as Record<string, unknown>;
    delete doc.mediaType;
    const body = Buffer.from(JSON.stringify(doc));
    const put = await putManifest(srv.url, "notype", "v1", body, OCI_MANIFEST);
    assert.equal(put.status, 201);
    const res = await getManifest("notype", "v1");
    assert.equal(res.headers.get("content-type"), OCI_MANIFEST);
  });

  it("PUT by digest stores under that digest; a body that does not hash to it is 400 DIGEST_INVALID", async () => {
    const img = await pushImage(srv.url, "bydigest", undefined);
    assert.equal((await getManifest("bydigest", img.digest)).status, 200);
    const other = Buffer.from(img.manifest.toString().replace('"schemaVersion":2', '"schemaVersion":2 '));
    const res = await putManifest(srv.url, "bydigest", img.digest, other, OCI_MANIFEST);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), "DIGEST_INVALID");
  });

  it("answers 404 MANIFEST_UNKNOWN for unknown tags and digests", async () => {
    await pushImage(srv.url, "known", "v1");
    for (const ref of ["nope", sha256("nope")]) {
      const res = await getManifest("known", ref);
      assert.equal(res.status, 404);
      assert.equal(await errorCode(res), "MANIFEST_UNKNOWN");
    }
    const unknownRepo = await getManifest("never-pushed", "latest");
    assert.equal(unknownRepo.status, 404);
  });

  it("a tag moved or removed behind the server's back (another process) is answered as it is on disk", async () => {
    const a = await pushImage(srv.url, "moving", "t");
    const b = await pushImage(srv.url, "moving", undefined);
    for (let i = 0; i < 2; i++) assert.equal((await getManifest("moving", "t")).headers.get("docker-content-digest"), a.digest);
    // Another process retags: a new link file renamed over the old one.
    const link = join(srv.root, "docker/registry/v2/repositories/moving/_manifests/tags/t/current/link");
    await writeFile(`${link}.new`, b.digest);
    await rename(`${link}.new`, link);
    const moved = await getManifest("moving", "t");
    assert.equal(moved.headers.get("docker-content-digest"), b.digest);
    assert.deepEqual(Buffer.from(await moved.arrayBuffer()), b.manifest);
    // ... or rewrites it in place (registry:2 does), then drops the tag.
    await writeFile(link, a.digest);
    assert.equal((await getManifest("moving", "t")).headers.get("docker-content-digest"), a.digest);
    await rm(join(srv.root, "docker/registry/v2/repositories/moving/_manifests/tags/t"), { recursive: true });
    assert.equal((await getManifest("moving", "t")).status, 404);
    // ... or deletes the manifest the tag points at (only its revision: the tag then resolves to nothing).
    await putManifest(srv.url, "moving", "t", a.manifest, OCI_MANIFEST);
    assert.equal((await getManifest("moving", "t")).status, 200);
    await rm(join(srv.root, `docker/registry/v2/repositories/moving/_manifests/revisions/sha256/${a.digest.slice(7)}`), { recursive: true });
    assert.equal((await getManifest("moving", "t")).status, 404);
  });

  it("a manifest pushed to one repository is unknown in another", async () => {
    const img = await pushImage(srv.url, "scoped-a", "v1");
    assert.equal((await getManifest("scoped-b", img.digest)).status, 404);
  });
});

describe("manifest validation", () => {
  let config: Buffer;
  let layer: Buffer;
  before(async () => {
    config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux" }));
    layer = randomBytes(32);
    await pushBlob(srv.url, "validate", config);
    await pushBlob(srv.url, "validate", layer);
  });

  async function expectInvalid(body: Buffer | string, contentType: string, code = "MANIFEST_INVALID", status = 400, ref = "bad"): Promise<void> {
    const res = await putManifest(srv.url, "validate", ref, Buffer.from(body), contentType);
    assert.equal(res.status, status, `${res.status} ${await res.clone().text()}`);
    assert.equal(await errorCode(res), code);
  }

  it("rejects a body that is not JSON", async () => {
    await expectInvalid("not json {", OCI_MANIFEST);
  });

  it("rejects JSON that is not of a manifest shape", async () => {
    await expectInvalid("[1,2,3]", OCI_MANIFEST);
    await expectInvalid(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST }), OCI_MANIFEST);
    await expectInvalid(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { digest: "x" }, layers: [] }), OCI_MANIFEST);
    await expectInvalid(JSON.stringify({ schemaVersion: 3, mediaType: OCI_MANIFEST, config: {}, layers: [] }), OCI_MANIFEST);
    await expectInvalid(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: "none" }), OCI_INDEX);
  });

  it("rejects Docker schema 1", async () => {
    await expectInvalid(JSON.stringify({ schemaVersion: 1, name: "x", tag: "y", fsLayers: [] }), "application/vnd.docker.distribution.manifest.v1+prettyjws");
  });

  it("rejects a Content-Type that disagrees with the body's mediaType", async () => {
    await expectInvalid(imageManifest(config, [layer]), DOCKER_MANIFEST);
    await expectInvalid(imageManifest(config, [layer]), OCI_INDEX);
  });

  it("rejects references to blobs the repository does not have with MANIFEST_BLOB_UNKNOWN", async () => {
    await expectInvalid(imageManifest(config, [randomBytes(16)]), OCI_MANIFEST, "MANIFEST_BLOB_UNKNOWN");
    // A blob that exists in the store but is not linked into this repository does not count.
    const elsewhere = randomBytes(16);
    await pushBlob(srv.url, "elsewhere", elsewhere);
    await expectInvalid(imageManifest(config, [elsewhere]), OCI_MANIFEST, "MANIFEST_BLOB_UNKNOWN");
  });

  it("rejects an index whose children are unknown with MANIFEST_BLOB_UNKNOWN", async () => {
    await expectInvalid(indexOf(OCI_INDEX, [{ mediaType: OCI_MANIFEST, digest: sha256("missing"), size: 7 }]), OCI_INDEX, "MANIFEST_BLOB_UNKNOWN");
  });

  it("rejects manifests over 4 MiB with 413", async () => {
    const huge = imageManifest(config, [layer], { annotations: { pad: "x".repeat(4 * 1024 * 1024) } });
    const res = await putManifest(srv.url, "validate", "huge", huge, OCI_MANIFEST);
    assert.equal(res.status, 413);
  });

  it("rejects an invalid tag on PUT with 400 and on GET with 404", async () => {
    const put = await rawRequest(srv.url, "PUT", "/v2/validate/manifests/-bad-tag", { "Content-Type": OCI_MANIFEST }, imageManifest(config, [layer]));
    assert.equal(put.status, 400);
    assert.equal(JSON.parse(put.body.toString()).errors[0].code, "MANIFEST_INVALID");
    const long = await getManifest("validate", "a".repeat(129));
    assert.equal(long.status, 404);
    assert.equal(await errorCode(long), "MANIFEST_UNKNOWN");
    const weird = await rawRequest(srv.url, "GET", "/v2/validate/manifests/..");
    assert.ok(weird.status === 400 || weird.status === 404, String(weird.status));
  });

  it("rejects an unknown manifest media type", async () => {
    const res = await putManifest(srv.url, "validate", "odd", imageManifest(config, [layer], { mediaType: "application/vnd.example+json" }), "application/vnd.example+json");
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), "MANIFEST_INVALID");
  });

  it("accepts a subject that points at nothing yet and answers OCI-Subject", async () => {
    const subject = { mediaType: OCI_MANIFEST, digest: sha256("future"), size: 6 };
    const body = imageManifest(config, [layer], { artifactType: "application/vnd.example.sig", subject });
    const res = await putManifest(srv.url, "validate", sha256(body), body, OCI_MANIFEST);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("oci-subject"), subject.digest);
  });
});
