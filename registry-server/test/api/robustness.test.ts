// Fixes from review: stalled bodies, chunked oversized manifests, abandoned monolithic uploads,
// per-repository manifest media types, and concurrent collections of different kinds.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http from "node:http";
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { startServer, TestServer } from "../helpers/server";
import { DOCKER_MANIFEST, imageManifest, OCI_MANIFEST, pushBlob, putManifest, sha256 } from "../helpers/registry";

let srv: TestServer;
/** A server that drops connections idle for 1 s, for the stalled bodies (it drops idle keep-alive connections too). */
let stalling: TestServer;
before(async () => {
  srv = await startServer();
  stalling = await startServer({ env: { REGISTRY_HTTP_IDLETIMEOUT: "1s" } });
});
after(async () => {
  await srv.close();
  await stalling.close();
});

/** Sends headers and `sent` bytes of a body, then nothing; resolves when the server closes the connection. */
function stall(method: string, path: string, headers: Record<string, string>, sent: Buffer): Promise<number> {
  const url = new URL(stalling.url);
  const started = Date.now();
  return new Promise((resolve) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers });
    req.on("error", () => resolve(Date.now() - started));
    req.on("response", (res) => {
      res.resume();
      res.on("close", () => resolve(Date.now() - started));
    });
    req.write(sent);
  });
}

/** A request on a connection of its own (no agent, no pooled socket). */
function freshRequest(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  const url = new URL(stalling.url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function uploadsOf(repo: string): Promise<string[]> {
  return readdir(join(stalling.root, "docker/registry/v2/repositories", repo, "_uploads")).catch(() => []);
}

describe("robustness", () => {
  it("drops a connection whose body stalls, and the session stays usable", async () => {
    // Each request on a connection of its own: the 1 s idle timeout also closes pooled ones, and
    // a client reusing one just as it closes would fail for a reason of its own.
    const post = await freshRequest("POST", "/v2/stalled/blobs/uploads/");
    const location = post.headers.location ?? "";
    const closedAfter = await stall("PATCH", location, { "Content-Length": "100" }, Buffer.from("0123456789"));
    assert.ok(closedAfter < 5_000, `closed after ${closedAfter} ms`);
    const status = await freshRequest("GET", location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, "0-9");
    const rest = randomBytes(90);
    const all = Buffer.concat([Buffer.from("0123456789"), rest]);
    assert.equal((await freshRequest("PATCH", location, { "Content-Range": "10-99", "Content-Length": "90" }, rest)).status, 202);
    assert.equal((await freshRequest("PUT", `${location}?digest=${sha256(all)}`)).status, 201);
  });

  it("answers 413 to an oversized manifest sent chunked (no Content-Length)", async () => {
    const url = new URL(srv.url);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: url.hostname, port: url.port, method: "PUT", path: "/v2/big/manifests/v1", headers: { "Content-Type": OCI_MANIFEST, "Transfer-Encoding": "chunked" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      for (let i = 0; i < 5; i++) req.write(chunk);
      req.end();
    });
    assert.equal(status, 413);
  });

  it("a monolithic POST whose body is cut off leaves no upload data behind", async () => {
    const body = randomBytes(256 * 1024);
    await stall("POST", `/v2/cutoff/blobs/uploads/?digest=${sha256(body)}`, { "Content-Length": String(body.length) }, body.subarray(0, 1000));
    for (let i = 0; i < 50 && (await uploadsOf("cutoff")).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(await uploadsOf("cutoff"), []);
  });

  it("answers each repository's own media type for the same bytes pushed without mediaType", async () => {
    const config = Buffer.from("{}");
    const layer = randomBytes(20);
    const doc = JSON.parse(imageManifest(config, [layer]).toString()) as Record<string, unknown>;
    delete doc.mediaType;
    const body = Buffer.from(JSON.stringify(doc));
    for (const [repo, type] of [
      ["as-docker", DOCKER_MANIFEST],
      ["as-oci", OCI_MANIFEST],
    ]) {
      await pushBlob(srv.url, repo, config);
      await pushBlob(srv.url, repo, layer);
      assert.equal((await putManifest(srv.url, repo, "v1", body, type)).status, 201);
    }
    for (const [repo, type] of [
      ["as-docker", DOCKER_MANIFEST],
      ["as-oci", OCI_MANIFEST],
    ]) {
      const res = await fetch(`${srv.url}/v2/${repo}/manifests/v1`, { method: "HEAD" });
      assert.equal(res.headers.get("content-type"), type, repo);
    }
  });

  it("a collection and a dry run asked for at once each answer their own kind", async () => {
    const [real, dry] = await Promise.all([fetch(`${srv.url}/_registry/gc`, { method: "POST" }), fetch(`${srv.url}/_registry/gc?dryRun=true`, { method: "POST" })]);
    assert.equal(((await real.json()) as { dryRun: boolean }).dryRun, false);
    assert.equal(((await dry.json()) as { dryRun: boolean }).dryRun, true);
  });
});
