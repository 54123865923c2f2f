// buildah builds a FROM scratch image, pushes it to the registry, and pulls it
// back; the registry's HTTP API is checked in between.
import * as assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { readTar, sha256 } from "../helpers/oci-image";
import { type RunResult } from "../helpers/tools";
import {
  TEST_TIMEOUT_MS,
  assertBlobPresent,
  assertManifestServed,
  assertOk,
  http,
  runIn,
  useRegistryAndClients,
} from "./support";

const GREETING = "built by buildah for the e2e test\n";
const LABEL = "org.example.e2e";

describe("buildah against the registry", () => {
  const env = useRegistryAndClients(["buildah"]);
  let context: string;
  let pushedDigest: string;
  const repo = "e2e/buildah";
  const localName = "localhost/e2e-buildah:v1";

  /** buildah with a temp root/runroot, vfs storage and the sandbox's policy. */
  const buildah = async (args: string[]): Promise<RunResult> =>
    runIn(env.sb, "buildah", [
      "--root",
      path.join(env.sb.dir, "storage"),
      "--runroot",
      path.join(env.sb.dir, "run"),
      "--storage-driver",
      "vfs",
      ...args,
    ]);

  before(async () => {
    context = await env.sb.subdir("context");
    await writeFile(path.join(context, "greeting.txt"), GREETING);
    await writeFile(
      path.join(context, "Containerfile"),
      `FROM scratch\nCOPY greeting.txt /greeting.txt\nLABEL ${LABEL}="pushed-by-buildah"\n`,
    );
  });

  it("buildah builds a FROM scratch image and pushes it; the registry serves its manifest, config and layer", { timeout: TEST_TIMEOUT_MS }, async () => {
    assertOk(
      await buildah([
        "bud",
        "--isolation",
        "chroot",
        "--signature-policy",
        env.sb.policy,
        "-f",
        path.join(context, "Containerfile"),
        "-t",
        localName,
        context,
      ]),
      "buildah bud",
    );
    const digestFile = path.join(env.sb.dir, "pushed.digest");
    assertOk(
      await buildah([
        "push",
        "--tls-verify=false",
        "--signature-policy",
        env.sb.policy,
        "--authfile",
        env.sb.authfile,
        "--digestfile",
        digestFile,
        localName,
        `docker://${env.reg.host}/${repo}:v1`,
      ]),
      "buildah push",
    );
    pushedDigest = (await readFile(digestFile, "utf8")).trim();
    assert.match(pushedDigest, /^sha256:[0-9a-f]{64}$/);

    const served = await assertManifestServed(env.reg, repo, "v1", pushedDigest);
    const manifest = JSON.parse(served.body.toString("utf8"));
    await assertBlobPresent(env.reg, repo, manifest.config.digest, manifest.config.size);
    assert.equal(manifest.layers.length, 1, served.describe);
    const [layer] = manifest.layers;
    await assertBlobPresent(env.reg, repo, layer.digest, layer.size);

    const config = await http("GET", `${env.reg.url}/v2/${repo}/blobs/${manifest.config.digest}`);
    assert.equal(config.status, 200, config.describe);
    assert.equal(sha256(config.body), manifest.config.digest, config.describe);
    assert.equal(JSON.parse(config.body.toString("utf8")).config.Labels[LABEL], "pushed-by-buildah", config.describe);

    const blob = await http("GET", `${env.reg.url}/v2/${repo}/blobs/${layer.digest}`);
    assert.equal(blob.status, 200, blob.describe);
    assert.equal(sha256(blob.body), layer.digest, "layer bytes do not match their digest");
    const files = readTar(gunzipSync(blob.body)).map((f) => [f.name.replace(/^\.?\//, ""), f.content.toString()]);
    assert.deepEqual(files, [["greeting.txt", GREETING]]);
  });

  it("buildah pulls the pushed image back with the same digest and content", { timeout: TEST_TIMEOUT_MS }, async () => {
    assert.ok(pushedDigest, "the push test did not run");
    assertOk(await buildah(["rmi", "--all", "--force"]), "buildah rmi --all");
    const remote = `${env.reg.host}/${repo}:v1`;
    assertOk(
      await buildah(["pull", "--tls-verify=false", "--signature-policy", env.sb.policy, "--authfile", env.sb.authfile, `docker://${remote}`]),
      "buildah pull",
    );
    const inspect = assertOk(
      await buildah(["inspect", "--type", "image", "--format", "{{.FromImageDigest}}", remote]),
      "buildah inspect",
    );
    assert.equal(inspect.stdout.trim(), pushedDigest);

    const container = assertOk(await buildah(["from", "--pull=never", remote]), "buildah from").stdout.trim();
    const mountpoint = assertOk(await buildah(["mount", container]), "buildah mount").stdout.trim();
    assert.equal(await readFile(path.join(mountpoint, "greeting.txt"), "utf8"), GREETING);
    assertOk(await buildah(["rm", container]), "buildah rm");
  });
});
