// `registry-server gc` (what `make gc` runs): asks the server listening on the configured
// address to collect, or collects the store itself when no server answers there.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { pushImage } from "../helpers/registry";
import { delay, makeTempDir, runToExit, serverEnv, startServerProcess, stopAll } from "./proc";

after(stopAll);

interface GcJson {
  dryRun: boolean;
  manifestsDeleted: string[];
  blobsDeleted: number;
  bytesFreed: number;
}

describe("registry-server gc", () => {
  it("collects through the running server, dry run first, and reports what was freed", async () => {
    const root = await makeTempDir("gc-cli");
    const server = await startServerProcess(root, { REGISTRY_GC_GRACEPERIOD: "0s" });
    const img = await pushImage(server.url, "app", "v1");
    assert.equal((await fetch(`${server.url}/v2/app/manifests/v1`, { method: "DELETE" })).status, 202);
    await delay(100);
    const env = serverEnv(root, { REGISTRY_HTTP_ADDR: `127.0.0.1:${new URL(server.url).port}`, REGISTRY_GC_GRACEPERIOD: "0s" });

    const dry = await runToExit(["gc", "--dry-run"], env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^would free .* \(by the server on port \d+\): 3 blobs, 1 manifests/m);
    assert.match(dry.stdout, /dry run: nothing was deleted/);
    assert.equal((await fetch(`${server.url}/v2/app/manifests/${img.digest}`)).status, 200);

    const real = await runToExit(["gc", "--json"], env);
    assert.equal(real.code, 0, real.stderr);
    const report = JSON.parse(real.stdout) as GcJson;
    assert.equal(report.dryRun, false);
    assert.deepEqual(report.manifestsDeleted, [`app@${img.digest}`]);
    assert.equal(report.blobsDeleted, 3);
    assert.equal(report.bytesFreed, img.config.length + img.layer.length + img.manifest.length);
    assert.equal((await fetch(`${server.url}/v2/app/manifests/${img.digest}`)).status, 404);
  });

  it("collects the store itself when no server listens on the address", async () => {
    const root = await makeTempDir("gc-cli-local");
    const server = await startServerProcess(root);
    const img = await pushImage(server.url, "gone", "v1");
    await fetch(`${server.url}/v2/gone/manifests/v1`, { method: "DELETE" });
    const port = new URL(server.url).port;
    server.signal("SIGTERM");
    assert.equal((await server.waitForExit(5_000)).code, 0);
    await delay(100);
    const env = serverEnv(root, { REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`, REGISTRY_GC_GRACEPERIOD: "0s" });
    const res = await runToExit(["gc"], env);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`^freed .* \\(in ${root.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\): 3 blobs, 1 manifests`, "m"));
    assert.ok(res.stdout.includes(img.digest), res.stdout);
  });

  it("refuses an unknown option with one line and exit code 2", async () => {
    const res = await runToExit(["gc", "--everything"], serverEnv(await makeTempDir("gc-cli-bad")));
    assert.equal(res.code, 2);
    assert.equal(res.stderr.trim().split("\n").length, 1);
    assert.match(res.stderr, /^registry-server gc: unknown option --everything/);
  });
});
