// containerd pulls from the registry as a mirror of localhost:5000 (the way a
// kind node is configured): it sends ?ns=localhost:5000 on every request.
import * as assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { startContainerd, ctr, writeMirrorHostsToml, type Containerd } from "../helpers/containerd";
import { writeImageLayout, writeIndexLayout, type Image, type ImageIndex } from "../helpers/oci-image";
import { describeRun } from "../helpers/tools";
import {
  TEST_TIMEOUT_MS,
  COMMAND_TIMEOUT_MS,
  assertManifestServed,
  assertOk,
  skopeo,
  useRegistryAndClients,
} from "./support";

const MIRRORED = "localhost:5000";

/** Rows of a `ctr ... ls` table, split on whitespace, header dropped. */
function rows(stdout: string): string[][] {
  return stdout
    .trim()
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/));
}

describe("containerd pulling through a hosts.toml mirror", () => {
  const env = useRegistryAndClients(["ctr", "skopeo"]);
  let containerd: Containerd;
  let hostsDir: string;
  let image: Image;
  let multi: ImageIndex;

  const ctrOk = async (args: string[], what = `ctr ${args.join(" ")}`) =>
    assertOk(await ctr(containerd.address, args, { timeoutMs: COMMAND_TIMEOUT_MS }), what);
  const pull = (reference: string, extra: string[] = []) =>
    ctrOk(["images", "pull", "--hosts-dir", hostsDir, "--snapshotter", "native", ...extra, reference]);

  /** Asserts `ctr images ls` lists `reference` with `digest`. */
  async function assertImageListed(reference: string, digest: string): Promise<void> {
    const ls = await ctrOk(["images", "ls"]);
    const row = rows(ls.stdout).find((r) => r[0] === reference);
    assert.ok(row, `${reference} not in ctr images ls:\n${describeRun(ls)}`);
    assert.equal(row[2], digest, `digest of ${reference} in ctr images ls:\n${ls.stdout}`);
  }

  /** Asserts the layer is in the content store and unpacked by the native snapshotter with the expected file. */
  async function assertUnpacked(img: Image): Promise<void> {
    const content = await ctrOk(["content", "ls"]);
    for (const b of img.blobs) assert.ok(content.stdout.includes(b.digest), `${b.digest} not in content store:\n${content.stdout}`);
    const layerRow = rows(content.stdout).find((r) => r[0] === img.layer.digest);
    assert.ok(layerRow?.join(" ").includes(`containerd.io/uncompressed=${img.diffId}`), content.stdout);

    const snapshots = await ctrOk(["snapshots", "--snapshotter", "native", "ls"]);
    // A single layer's chain ID is its diff ID.
    const snap = rows(snapshots.stdout).find((r) => r[0] === img.diffId);
    assert.ok(snap && snap.includes("Committed"), `no committed snapshot ${img.diffId}:\n${snapshots.stdout}`);

    // The native snapshotter keeps each snapshot as a plain directory: find the file in one of them.
    const { name } = img.files[0];
    const snapRoot = path.join(containerd.dir, "root", "io.containerd.snapshotter.v1.native", "snapshots");
    const expected = img.files[0].content.toString();
    const found: string[] = [];
    for (const id of await readdir(snapRoot)) {
      found.push(await readFile(path.join(snapRoot, id, name), "utf8").catch(() => ""));
    }
    assert.ok(found.includes(expected), `no unpacked ${name} with ${JSON.stringify(expected)}: ${JSON.stringify(found)}`);
  }

  before(async () => {
    containerd = await startContainerd();
    hostsDir = path.join(containerd.dir, "hosts");
    await writeMirrorHostsToml(hostsDir, MIRRORED, env.reg.url);

    const imageLayout = await env.sb.subdir("image");
    image = await writeImageLayout(imageLayout, {
      files: [{ name: "hello.txt", content: "hello from the single-arch image\n" }],
      tag: "v1",
    });
    const indexLayout = await env.sb.subdir("index");
    multi = await writeIndexLayout(indexLayout, { architectures: ["amd64", "arm64"], tag: "v1" });
    assertOk(
      await skopeo(env.sb, ["copy", "--dest-tls-verify=false", `oci:${imageLayout}:v1`, `docker://${env.reg.host}/e2e/ctr:v1`]),
      "skopeo copy (setup)",
    );
    assertOk(
      await skopeo(env.sb, ["copy", "--all", "--dest-tls-verify=false", `oci:${indexLayout}:v1`, `docker://${env.reg.host}/e2e/ctr-multi:v1`]),
      "skopeo copy --all (setup)",
    );
  });

  after(async () => {
    await containerd?.stop();
  });

  it("the registry answers requests carrying containerd's ?ns=localhost:5000", { timeout: TEST_TIMEOUT_MS }, async () => {
    await assertManifestServed(env.reg, "e2e/ctr", "v1", image.manifest.digest, `?ns=${encodeURIComponent(MIRRORED)}`);
  });

  it("containerd pulls localhost:5000/<repo>:<tag> through the mirror with the pushed digest and unpacks the layer", { timeout: TEST_TIMEOUT_MS }, async () => {
    const reference = `${MIRRORED}/e2e/ctr:v1`;
    await pull(reference);
    await assertImageListed(reference, image.manifest.digest);
    await assertUnpacked(image);
    const ready = await ctrOk(["images", "check", "--snapshotter", "native", "--quiet"]);
    assert.ok(ready.stdout.split("\n").includes(reference), `images check: ${reference} not complete and unpacked:\n${ready.stdout}`);
  });

  it("containerd pulls a multi-arch index through the mirror and unpacks its linux/amd64 image", { timeout: TEST_TIMEOUT_MS }, async () => {
    const reference = `${MIRRORED}/e2e/ctr-multi:v1`;
    await pull(reference, ["--platform", "linux/amd64"]);
    await assertImageListed(reference, multi.index.digest);
    const amd64 = multi.images.find((i) => i.platform.architecture === "amd64")!;
    await assertUnpacked(amd64);
  });
});
