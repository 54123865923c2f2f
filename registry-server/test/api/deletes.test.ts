import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startServer, TestServer } from "../helpers/server";
import { errorCode, OCI_MANIFEST, pushBlob, pushImage, putManifest } from "../helpers/registry";

describe("deletes", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer();
  });
  after(async () => {
    await srv.close();
  });

  async function tags(repo: string): Promise<string[]> {
    return ((await (await fetch(`${srv.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags;
  }

  it("DELETE by tag removes only that tag; the manifest and other tags stay", async () => {
    const img = await pushImage(srv.url, "tagdel", "a");
    assert.equal((await putManifest(srv.url, "tagdel", "b", img.manifest, OCI_MANIFEST)).status, 201);
    const res = await fetch(`${srv.url}/v2/tagdel/manifests/a`, { method: "DELETE" });
    assert.equal(res.status, 202);
    assert.deepEqual(await tags("tagdel"), ["b"]);
    assert.equal((await fetch(`${srv.url}/v2/tagdel/manifests/a`)).status, 404);
    assert.equal((await fetch(`${srv.url}/v2/tagdel/manifests/${img.digest}`)).status, 200);
    const again = await fetch(`${srv.url}/v2/tagdel/manifests/a`, { method: "DELETE" });
    assert.equal(again.status, 404);
    assert.equal(await errorCode(again), "MANIFEST_UNKNOWN");
  });

  it("DELETE by digest removes the manifest and every tag pointing at it", async () => {
    const img = await pushImage(srv.url, "digestdel", "one");
    await putManifest(srv.url, "digestdel", "two", img.manifest, OCI_MANIFEST);
    const keep = await pushImage(srv.url, "digestdel", "keep");
    const res = await fetch(`${srv.url}/v2/digestdel/manifests/${img.digest}`, { method: "DELETE" });
    assert.equal(res.status, 202);
    assert.deepEqual(await tags("digestdel"), ["keep"]);
    assert.equal((await fetch(`${srv.url}/v2/digestdel/manifests/${img.digest}`)).status, 404);
    assert.equal((await fetch(`${srv.url}/v2/digestdel/manifests/keep`)).status, 200);
    assert.equal((await fetch(`${srv.url}/v2/digestdel/manifests/${keep.digest}`)).status, 200);
    const again = await fetch(`${srv.url}/v2/digestdel/manifests/${img.digest}`, { method: "DELETE" });
    assert.equal(again.status, 404);
  });
});

describe("deletes disabled (REGISTRY_STORAGE_DELETE_ENABLED=false)", () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer({ deleteEnabled: false });
  });
  after(async () => {
    await srv.close();
  });

  it("answers every DELETE with 405 UNSUPPORTED and removes nothing", async () => {
    const img = await pushImage(srv.url, "kept", "v1");
    const blob = await pushBlob(srv.url, "kept", Buffer.from("blob"));
    const session = (await fetch(`${srv.url}/v2/kept/blobs/uploads/`, { method: "POST" })).headers.get("location");
    for (const path of [`/v2/kept/manifests/v1`, `/v2/kept/manifests/${img.digest}`, `/v2/kept/blobs/${blob}`]) {
      const res = await fetch(`${srv.url}${path}`, { method: "DELETE" });
      assert.equal(res.status, 405, path);
      assert.equal(await errorCode(res), "UNSUPPORTED");
    }
    assert.equal((await fetch(`${srv.url}/v2/kept/manifests/v1`)).status, 200);
    assert.equal((await fetch(`${srv.url}/v2/kept/blobs/${blob}`, { method: "HEAD" })).status, 200);
    // Cancelling an upload deletes nothing stored: it stays allowed.
    assert.equal((await fetch(`${srv.url}${session}`, { method: "DELETE" })).status, 204);
  });
});
