// skopeo (containers/image) against the registry: push from an OCI layout,
// inspect, pull back out, convert to Docker schema 2, delete, and a multi-arch
// index copied with --all.
import * as assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import {
  MEDIA_TYPE,
  sha256,
  writeImageLayout,
  writeIndexLayout,
  type Image,
  type ImageIndex,
} from "../helpers/oci-image";
import {
  TEST_TIMEOUT_MS,
  assertBlobPresent,
  assertManifestServed,
  assertOk,
  http,
  parseJson,
  skopeo,
  useRegistryAndClients,
} from "./support";

/** Reads an OCI layout skopeo wrote: the digest index.json points at, and every blob checked against its name. */
async function readLayout(dir: string): Promise<{ topDigest: string; blobDigests: string[] }> {
  const index = JSON.parse(await readFile(path.join(dir, "index.json"), "utf8"));
  assert.equal(index.manifests.length, 1, `index.json of ${dir}: ${JSON.stringify(index)}`);
  const blobDir = path.join(dir, "blobs", "sha256");
  const blobDigests: string[] = [];
  for (const name of await readdir(blobDir)) {
    const digest = `sha256:${name}`;
    assert.equal(sha256(await readFile(path.join(blobDir, name))), digest, `blob ${name} in ${dir} is corrupt`);
    blobDigests.push(digest);
  }
  return { topDigest: index.manifests[0].digest, blobDigests: blobDigests.sort() };
}

const sorted = (digests: string[]) => [...digests].sort();

describe("skopeo against the registry", () => {
  const env = useRegistryAndClients(["skopeo"]);
  let image: Image;
  let multi: ImageIndex;
  let imageLayout: string;
  let indexLayout: string;
  const repo = "e2e/skopeo";
  const multiRepo = "e2e/skopeo-multi";
  const ref = (r: string, tag: string) => `docker://${env.reg.host}/${r}:${tag}`;

  before(async () => {
    imageLayout = await env.sb.subdir("image-layout");
    indexLayout = await env.sb.subdir("index-layout");
    image = await writeImageLayout(imageLayout, { tag: "v1" });
    multi = await writeIndexLayout(indexLayout, { architectures: ["amd64", "arm64"], tag: "multi" });
  });

  it("skopeo copies an OCI layout in and back out with identical digests", { timeout: TEST_TIMEOUT_MS }, async () => {
    assertOk(
      await skopeo(env.sb, ["copy", "--dest-tls-verify=false", `oci:${imageLayout}:v1`, ref(repo, "v1")]),
      "skopeo copy oci: -> registry",
    );

    const inspect = parseJson(
      assertOk(await skopeo(env.sb, ["inspect", "--tls-verify=false", ref(repo, "v1")]), "skopeo inspect"),
      "skopeo inspect",
    );
    assert.equal(inspect.Digest, image.manifest.digest, JSON.stringify(inspect));
    assert.deepEqual(inspect.Layers, [image.layer.digest], JSON.stringify(inspect));
    assert.equal(inspect.Architecture, "amd64");
    assert.ok(inspect.RepoTags.includes("v1"), `tag list: ${JSON.stringify(inspect.RepoTags)}`);

    const raw = assertOk(await skopeo(env.sb, ["inspect", "--raw", "--tls-verify=false", ref(repo, "v1")]), "inspect --raw");
    assert.equal(raw.stdout, image.manifest.data.toString("utf8"), "the registry changed the manifest bytes");
    const config = assertOk(
      await skopeo(env.sb, ["inspect", "--config", "--raw", "--tls-verify=false", ref(repo, "v1")]),
      "inspect --config --raw",
    );
    assert.equal(sha256(config.stdout), image.config.digest, "the config blob came back different");

    await assertManifestServed(env.reg, repo, "v1", image.manifest.digest);
    for (const b of [image.layer, image.config]) await assertBlobPresent(env.reg, repo, b.digest, b.size);

    const out = await env.sb.subdir("copied-out");
    assertOk(
      await skopeo(env.sb, ["copy", "--src-tls-verify=false", ref(repo, "v1"), `oci:${out}:v1`]),
      "skopeo copy registry -> oci:",
    );
    const copied = await readLayout(out);
    assert.equal(copied.topDigest, image.manifest.digest);
    assert.deepEqual(copied.blobDigests, sorted(image.blobs.map((b) => b.digest)));
  });

  it("skopeo --format v2s2 converts the image to a Docker schema 2 manifest with the same config and layer", { timeout: TEST_TIMEOUT_MS }, async () => {
    assertOk(
      await skopeo(env.sb, [
        "copy",
        "--format",
        "v2s2",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        ref(repo, "v1"),
        ref(repo, "v2s2"),
      ]),
      "skopeo copy --format v2s2",
    );
    const raw = assertOk(await skopeo(env.sb, ["inspect", "--raw", "--tls-verify=false", ref(repo, "v2s2")]), "inspect --raw");
    const manifest = parseJson(raw, "inspect --raw");
    assert.equal(manifest.mediaType, MEDIA_TYPE.dockerManifest, raw.stdout);
    assert.equal(manifest.config.mediaType, MEDIA_TYPE.dockerConfig, raw.stdout);
    assert.equal(manifest.config.digest, image.config.digest, raw.stdout);
    assert.deepEqual(
      manifest.layers.map((l: { mediaType: string; digest: string }) => [l.mediaType, l.digest]),
      [[MEDIA_TYPE.dockerLayerGzip, image.layer.digest]],
      raw.stdout,
    );

    const served = await assertManifestServed(env.reg, repo, "v2s2", sha256(raw.stdout));
    assert.equal(served.headers.get("content-type"), MEDIA_TYPE.dockerManifest, served.describe);
  });

  it("skopeo deletes a manifest and the registry then reports it unknown, keeping the other manifest", { timeout: TEST_TIMEOUT_MS }, async () => {
    await assertManifestServed(env.reg, repo, "v1", image.manifest.digest); // set up by the first test
    assertOk(await skopeo(env.sb, ["delete", "--tls-verify=false", ref(repo, "v1")]), "skopeo delete");

    const gone = await skopeo(env.sb, ["inspect", "--raw", "--tls-verify=false", ref(repo, "v1")]);
    assert.notEqual(gone.code, 0, `inspect of a deleted image succeeded:\n${gone.stdout}`);
    assert.match(gone.stderr, /manifest unknown/i, gone.stderr);
    for (const reference of [image.manifest.digest, "v1"]) {
      const r = await http("GET", `${env.reg.url}/v2/${repo}/manifests/${reference}`, { Accept: MEDIA_TYPE.ociManifest });
      assert.equal(r.status, 404, r.describe);
    }
    // The v2s2 copy has another digest, so it is still there.
    const v2s2 = await http("GET", `${env.reg.url}/v2/${repo}/manifests/v2s2`, { Accept: MEDIA_TYPE.dockerManifest });
    assert.equal(v2s2.status, 200, v2s2.describe);
  });

  it("skopeo copies a multi-arch OCI index with --all and reads every manifest back", { timeout: TEST_TIMEOUT_MS }, async () => {
    assertOk(
      await skopeo(env.sb, ["copy", "--all", "--dest-tls-verify=false", `oci:${indexLayout}:multi`, ref(multiRepo, "v1")]),
      "skopeo copy --all oci: -> registry",
    );

    const raw = assertOk(await skopeo(env.sb, ["inspect", "--raw", "--tls-verify=false", ref(multiRepo, "v1")]), "inspect --raw");
    assert.equal(raw.stdout, multi.index.data.toString("utf8"), "the registry changed the index bytes");
    const served = await assertManifestServed(env.reg, multiRepo, "v1", multi.index.digest);
    assert.equal(served.headers.get("content-type"), MEDIA_TYPE.ociIndex, served.describe);

    for (const img of multi.images) {
      const arch = img.platform.architecture;
      const inspect = parseJson(
        assertOk(
          await skopeo(env.sb, ["--override-arch", arch, "inspect", "--tls-verify=false", ref(multiRepo, "v1")]),
          `skopeo inspect --override-arch ${arch}`,
        ),
        "skopeo inspect",
      );
      // (Digest is the index's; the chosen instance shows in Architecture and Layers.)
      assert.equal(inspect.Architecture, arch, JSON.stringify(inspect));
      assert.deepEqual(inspect.Layers, [img.layer.digest], JSON.stringify(inspect));
      const byDigest = `docker://${env.reg.host}/${multiRepo}@${img.manifest.digest}`;
      const child = assertOk(await skopeo(env.sb, ["inspect", "--raw", "--tls-verify=false", byDigest]), "inspect --raw @digest");
      assert.equal(child.stdout, img.manifest.data.toString("utf8"), `${arch} manifest bytes changed`);
      await assertManifestServed(env.reg, multiRepo, img.manifest.digest, img.manifest.digest);
    }

    const out = await env.sb.subdir("multi-copied-out");
    assertOk(
      await skopeo(env.sb, ["copy", "--all", "--src-tls-verify=false", ref(multiRepo, "v1"), `oci:${out}:multi`]),
      "skopeo copy --all registry -> oci:",
    );
    const copied = await readLayout(out);
    assert.equal(copied.topDigest, multi.index.digest);
    assert.deepEqual(copied.blobDigests, sorted(multi.blobs.map((b) => b.digest)));
  });
});
