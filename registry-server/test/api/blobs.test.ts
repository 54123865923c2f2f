import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as http from "node:http";
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { startServer, TestServer } from "../helpers/server";
import { errorCode, pushBlob, rawRequest, sha256 } from "../helpers/registry";

let srv: TestServer;
before(async () => {
  srv = await startServer();
});
after(async () => {
  await srv.close();
});

async function startSession(repo: string): Promise<string> {
  const res = await fetch(`${srv.url}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  assert.equal(res.status, 202);
  assert.equal(res.headers.get("range"), "0-0");
  assert.ok(res.headers.get("docker-upload-uuid"));
  const location = res.headers.get("location");
  assert.ok(location?.startsWith(`/v2/${repo}/blobs/uploads/`));
  return location ?? "";
}

/** Every blob file under the store, for "nothing was stored" checks. */
async function storedBlobs(): Promise<string[]> {
  const root = join(srv.root, "docker/registry/v2/blobs/sha256");
  const out: string[] = [];
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    for (const hex of await readdir(join(root, prefix))) out.push(`sha256:${hex}`);
  }
  return out;
}

describe("GET /v2/", () => {
  it("answers 200 {} with the API version header", async () => {
    const res = await fetch(`${srv.url}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("docker-distribution-api-version"), "registry/2.0");
    assert.deepEqual(await res.json(), {});
  });

  it("answers an unknown endpoint with 404 and the OCI error body", async () => {
    const res = await fetch(`${srv.url}/v3/`);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(await errorCode(res), "NOT_FOUND");
  });

  it("answers a method a route does not have with 405 and Allow", async () => {
    const res = await fetch(`${srv.url}/v2/_catalog`, { method: "DELETE" });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "GET");
    assert.equal(await errorCode(res), "UNSUPPORTED");
  });

  it("answers a CORS preflight without credentials", async () => {
    const res = await fetch(`${srv.url}/v2/x/manifests/latest`, {
      method: "OPTIONS",
      headers: { Origin: "http://ui.local", "Access-Control-Request-Method": "DELETE" },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.match(res.headers.get("access-control-allow-methods") ?? "", /DELETE/);
    assert.match(res.headers.get("access-control-allow-headers") ?? "", /Authorization/);
    const get = await fetch(`${srv.url}/v2/`, { headers: { Origin: "http://ui.local" } });
    assert.match(get.headers.get("access-control-expose-headers") ?? "", /Docker-Content-Digest/);
  });
});

describe("repository names", () => {
  const bad = ["..", "%2e%2e", "a/../b", "UPPER", "a//b", "-a", "a-", "a/", "x".repeat(256), "a%2Fb", "a\\b"];
  for (const name of bad) {
    it(`rejects ${JSON.stringify(name.length > 20 ? name.slice(0, 10) + "…" : name)} with 400 NAME_INVALID`, async () => {
      const res = await rawRequest(srv.url, "GET", `/v2/${name}/tags/list`);
      assert.equal(res.status, 400, `status for ${name}`);
      assert.equal(JSON.parse(res.body.toString()).errors[0].code, "NAME_INVALID");
    });
  }

  it("accepts a 255-character name with separators", async () => {
    const name = `a.b_c__d-e/${"x".repeat(255 - 11)}`;
    assert.equal(name.length, 255);
    const digest = await pushBlob(srv.url, name, Buffer.from("long name"));
    const res = await fetch(`${srv.url}/v2/${name}/blobs/${digest}`, { method: "HEAD" });
    assert.equal(res.status, 200);
  });
});

describe("blob push and pull", () => {
  it("POST ?digest= stores a blob in one request", async () => {
    const content = randomBytes(1000);
    const digest = sha256(content);
    const res = await fetch(`${srv.url}/v2/mono/blobs/uploads/?digest=${digest}`, { method: "POST", body: content });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("location"), `/v2/mono/blobs/${digest}`);
    assert.equal(res.headers.get("docker-content-digest"), digest);
    const get = await fetch(`${srv.url}/v2/mono/blobs/${digest}`);
    assert.equal(get.status, 200);
    assert.equal(get.headers.get("content-type"), "application/octet-stream");
    assert.equal(get.headers.get("content-length"), "1000");
    assert.equal(get.headers.get("docker-content-digest"), digest);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), content);
  });

  it("HEAD answers size and digest without a body", async () => {
    const content = randomBytes(77);
    const digest = await pushBlob(srv.url, "head", content);
    const res = await fetch(`${srv.url}/v2/head/blobs/${digest}`, { method: "HEAD" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-length"), "77");
    assert.equal(res.headers.get("docker-content-digest"), digest);
  });

  it("POST then PUT with the whole body completes a monolithic upload", async () => {
    const content = randomBytes(5000);
    const location = await startSession("twostep");
    const res = await fetch(`${srv.url}${location}?digest=${sha256(content)}`, { method: "PUT", body: content });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("docker-content-digest"), sha256(content));
  });

  it("chunked PATCHes with Content-Range, then PUT, store the concatenation", async () => {
    const content = randomBytes(3 * 1024 + 5);
    const location = await startSession("chunked");
    let offset = 0;
    for (const size of [1024, 1024, 1024]) {
      const chunk = content.subarray(offset, offset + size);
      const res = await fetch(`${srv.url}${location}`, {
        method: "PATCH",
        body: chunk,
        headers: { "Content-Range": `${offset}-${offset + size - 1}`, "Content-Type": "application/octet-stream" },
      });
      assert.equal(res.status, 202);
      assert.equal(res.headers.get("range"), `0-${offset + size - 1}`);
      assert.equal(res.headers.get("location"), location);
      offset += size;
    }
    const status = await fetch(`${srv.url}${location}`);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get("range"), `0-${offset - 1}`);
    const res = await fetch(`${srv.url}${location}?digest=${sha256(content)}`, {
      method: "PUT",
      body: content.subarray(offset),
      headers: { "Content-Range": `${offset}-${content.length - 1}` },
    });
    assert.equal(res.status, 201);
    const get = await fetch(`${srv.url}/v2/chunked/blobs/${sha256(content)}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), content);
  });

  it("a streamed PATCH without Content-Range appends the whole body (docker's way)", async () => {
    const content = randomBytes(200_000);
    const location = await startSession("streamed");
    const patch = await fetch(`${srv.url}${location}`, { method: "PATCH", body: content });
    assert.equal(patch.status, 202);
    assert.equal(patch.headers.get("range"), `0-${content.length - 1}`);
    const put = await fetch(`${srv.url}${location}?digest=${sha256(content)}`, { method: "PUT" });
    assert.equal(put.status, 201);
  });

  it("an out-of-order chunk answers 416 with the current Range and the session stays usable", async () => {
    const content = randomBytes(2048);
    const location = await startSession("order");
    const first = await fetch(`${srv.url}${location}`, { method: "PATCH", body: content.subarray(0, 1024), headers: { "Content-Range": "0-1023" } });
    assert.equal(first.status, 202);
    const skipped = await fetch(`${srv.url}${location}`, { method: "PATCH", body: content.subarray(0, 100), headers: { "Content-Range": "1500-1599" } });
    assert.equal(skipped.status, 416);
    assert.equal(skipped.headers.get("range"), "0-1023");
    assert.equal(await errorCode(skipped), "RANGE_INVALID");
    const again = await fetch(`${srv.url}${location}`, { method: "PATCH", body: content.subarray(0, 1024), headers: { "Content-Range": "0-1023" } });
    assert.equal(again.status, 416, "a chunk that repeats data already received is out of order too");
    const second = await fetch(`${srv.url}${location}`, { method: "PATCH", body: content.subarray(1024), headers: { "Content-Range": "1024-2047" } });
    assert.equal(second.status, 202);
    const put = await fetch(`${srv.url}${location}?digest=${sha256(content)}`, { method: "PUT" });
    assert.equal(put.status, 201);
  });

  it("a PUT whose content does not hash to the digest answers 400 DIGEST_INVALID and stores nothing", async () => {
    const before = await storedBlobs();
    const content = randomBytes(4096);
    const wrong = sha256(Buffer.from("something else"));
    const res = await fetch(`${srv.url}/v2/mismatch/blobs/uploads/?digest=${wrong}`, { method: "POST", body: content });
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), "DIGEST_INVALID");
    const head = await fetch(`${srv.url}/v2/mismatch/blobs/${wrong}`, { method: "HEAD" });
    assert.equal(head.status, 404);
    const head2 = await fetch(`${srv.url}/v2/mismatch/blobs/${sha256(content)}`, { method: "HEAD" });
    assert.equal(head2.status, 404);
    assert.deepEqual((await storedBlobs()).sort(), before.sort());
  });

  it("rejects malformed digests and unsupported algorithms with 400 DIGEST_INVALID", async () => {
    for (const d of ["sha256:abc", "sha256:" + "A".repeat(64), "md5:" + "a".repeat(32), "sha384:" + "a".repeat(96), "nodigest", "sha256:" + "g".repeat(64)]) {
      const res = await fetch(`${srv.url}/v2/digests/blobs/${d}`);
      assert.equal(res.status, 400, d);
      assert.equal(await errorCode(res), "DIGEST_INVALID", d);
    }
    const put = await fetch(`${srv.url}${await startSession("digests")}?digest=sha256:short`, { method: "PUT" });
    assert.equal(put.status, 400);
    assert.equal(await errorCode(put), "DIGEST_INVALID");
    const missing = await fetch(`${srv.url}${await startSession("digests")}`, { method: "PUT" });
    assert.equal(missing.status, 400);
    assert.equal(await errorCode(missing), "DIGEST_INVALID");
  });

  it("supports sha512 digests", async () => {
    const { createHash } = await import("node:crypto");
    const content = randomBytes(100);
    const digest = `sha512:${createHash("sha512").update(content).digest("hex")}`;
    const res = await fetch(`${srv.url}/v2/sha512/blobs/uploads/?digest=${digest}`, { method: "POST", body: content });
    assert.equal(res.status, 201);
    const get = await fetch(`${srv.url}/v2/sha512/blobs/${digest}`);
    assert.deepEqual(Buffer.from(await get.arrayBuffer()), content);
  });

  it("answers unknown blobs and sessions with 404 BLOB_UNKNOWN / BLOB_UPLOAD_UNKNOWN", async () => {
    const blob = await fetch(`${srv.url}/v2/unknown/blobs/${sha256("nope")}`);
    assert.equal(blob.status, 404);
    assert.equal(await errorCode(blob), "BLOB_UNKNOWN");
    for (const id of ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "..%2F..%2Fetc"]) {
      const res = await fetch(`${srv.url}/v2/unknown/blobs/uploads/${id}`);
      assert.equal(res.status, 404, id);
      assert.equal(await errorCode(res), "BLOB_UPLOAD_UNKNOWN");
      const patch = await fetch(`${srv.url}/v2/unknown/blobs/uploads/${id}`, { method: "PATCH", body: "x" });
      assert.equal(patch.status, 404);
    }
  });

  it("a session belongs to its repository", async () => {
    const location = await startSession("owner");
    const other = location.replace("/v2/owner/", "/v2/thief/");
    const res = await fetch(`${srv.url}${other}`);
    assert.equal(res.status, 404);
  });

  it("DELETE of a session cancels it", async () => {
    const location = await startSession("cancel");
    await fetch(`${srv.url}${location}`, { method: "PATCH", body: randomBytes(100) });
    const res = await fetch(`${srv.url}${location}`, { method: "DELETE" });
    assert.equal(res.status, 204);
    const status = await fetch(`${srv.url}${location}`);
    assert.equal(status.status, 404);
  });

  it("two clients pushing the same blob at once both succeed and one copy is stored", async () => {
    const content = randomBytes(3 * 1024 * 1024);
    const digest = sha256(content);
    const results = await Promise.all(
      ["race-a", "race-b", "race-a"].map((repo) => fetch(`${srv.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: "POST", body: content })),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      [201, 201, 201],
    );
    assert.equal((await storedBlobs()).filter((d) => d === digest).length, 1);
    for (const repo of ["race-a", "race-b"]) {
      const get = await fetch(`${srv.url}/v2/${repo}/blobs/${digest}`);
      assert.deepEqual(Buffer.from(await get.arrayBuffer()), content);
    }
  });

  it("a client that disconnects mid-PATCH leaves a resumable session and no served blob", async () => {
    const content = randomBytes(64 * 1024);
    const location = await startSession("disconnect");
    const url = new URL(`${srv.url}${location}`);
    await new Promise<void>((resolve) => {
      const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: "PATCH", headers: { "Content-Length": String(content.length) } });
      req.on("error", () => resolve());
      req.write(content.subarray(0, 20_000), () => {
        setTimeout(() => {
          req.destroy();
          resolve();
        }, 100);
      });
    });
    const head = await fetch(`${srv.url}/v2/disconnect/blobs/${sha256(content)}`, { method: "HEAD" });
    assert.equal(head.status, 404);
    // The server may still be flushing what it got; poll the status briefly.
    let received = -1;
    for (let i = 0; i < 50 && received !== 20_000; i++) {
      const status = await fetch(`${srv.url}${location}`);
      assert.equal(status.status, 204);
      received = Number((status.headers.get("range") ?? "0-0").split("-")[1]) + 1;
      if (received !== 20_000) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(received, 20_000);
    const rest = await fetch(`${srv.url}${location}`, { method: "PATCH", body: content.subarray(received), headers: { "Content-Range": `${received}-${content.length - 1}` } });
    assert.equal(rest.status, 202);
    const put = await fetch(`${srv.url}${location}?digest=${sha256(content)}`, { method: "PUT" });
    assert.equal(put.status, 201);
  });
});

describe("blob ranges", () => {
  const content = randomBytes(10_000);
  let digest: string;
  before(async () => {
    digest = await pushBlob(srv.url, "ranges", content);
  });

  it("Range: bytes=a-b answers 206 with Content-Range", async () => {
    const res = await fetch(`${srv.url}/v2/ranges/blobs/${digest}`, { headers: { Range: "bytes=100-199" } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get("content-range"), "bytes 100-199/10000");
    assert.equal(res.headers.get("content-length"), "100");
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), content.subarray(100, 200));
  });

  it("Range: bytes=a- resumes to the end (containerd)", async () => {
    const res = await fetch(`${srv.url}/v2/ranges/blobs/${digest}`, { headers: { Range: "bytes=9000-" } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get("content-range"), "bytes 9000-9999/10000");
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), content.subarray(9000));
  });

  it("a range past the end answers 416 with the size", async () => {
    const res = await fetch(`${srv.url}/v2/ranges/blobs/${digest}`, { headers: { Range: "bytes=20000-" } });
    assert.equal(res.status, 416);
    assert.equal(res.headers.get("content-range"), "bytes */10000");
  });
});

describe("cross-repository mount", () => {
  it("mount with from links the blob without a copy (201)", async () => {
    const digest = await pushBlob(srv.url, "mount-src", randomBytes(300));
    const res = await fetch(`${srv.url}/v2/mount-dst/blobs/uploads/?mount=${digest}&from=mount-src`, { method: "POST" });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("location"), `/v2/mount-dst/blobs/${digest}`);
    assert.equal((await fetch(`${srv.url}/v2/mount-dst/blobs/${digest}`, { method: "HEAD" })).status, 200);
  });

  it("mount without from finds the blob anywhere in the store (201)", async () => {
    const digest = await pushBlob(srv.url, "auto-src", randomBytes(300));
    const res = await fetch(`${srv.url}/v2/auto-dst/blobs/uploads/?mount=${digest}`, { method: "POST" });
    assert.equal(res.status, 201);
  });

  it("mount of an unknown blob falls back to a new session (202)", async () => {
    const res = await fetch(`${srv.url}/v2/mount-dst/blobs/uploads/?mount=${sha256("absent")}&from=mount-src`, { method: "POST" });
    assert.equal(res.status, 202);
    assert.ok(res.headers.get("location"));
  });

  it("mount from a repository that does not have the blob falls back to 202", async () => {
    const digest = await pushBlob(srv.url, "has-it", randomBytes(300));
    const res = await fetch(`${srv.url}/v2/mount-dst/blobs/uploads/?mount=${digest}&from=lacks-it`, { method: "POST" });
    assert.equal(res.status, 202);
  });
});

describe("blob delete", () => {
  it("DELETE unlinks the blob from the repository (202), then it is unknown there", async () => {
    const digest = await pushBlob(srv.url, "del-blob", randomBytes(100));
    await fetch(`${srv.url}/v2/del-other/blobs/uploads/?mount=${digest}&from=del-blob`, { method: "POST" });
    const res = await fetch(`${srv.url}/v2/del-blob/blobs/${digest}`, { method: "DELETE" });
    assert.equal(res.status, 202);
    assert.equal((await fetch(`${srv.url}/v2/del-blob/blobs/${digest}`, { method: "HEAD" })).status, 404);
    assert.equal((await fetch(`${srv.url}/v2/del-other/blobs/${digest}`, { method: "HEAD" })).status, 200);
    const again = await fetch(`${srv.url}/v2/del-blob/blobs/${digest}`, { method: "DELETE" });
    assert.equal(again.status, 404);
    assert.equal(await errorCode(again), "BLOB_UNKNOWN");
  });
});
