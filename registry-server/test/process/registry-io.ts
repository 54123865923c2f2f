// Registry API calls and checks shared by the process tests: what a client sees after a push,
// and what lies in the blob store on disk.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import { sha256 } from "../helpers/registry";

/** GET of a blob in `repo` answers exactly `content` under its digest. */
export async function expectBlob(base: string, repo: string, content: Buffer): Promise<void> {
  const digest = sha256(content);
  const res = await fetch(`${base}/v2/${repo}/blobs/${digest}`);
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `GET blob ${digest} in ${repo} from ${base}`);
  assert.equal(res.headers.get("docker-content-digest"), digest);
  assert.ok(body.equals(content), `blob ${digest} in ${repo} from ${base} differs (${body.length} bytes, expected ${content.length})`);
}

/** GET of a manifest by tag or digest answers exactly `content`. */
export async function expectManifest(base: string, repo: string, reference: string, content: Buffer): Promise<void> {
  const res = await fetch(`${base}/v2/${repo}/manifests/${reference}`);
  const body = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200, `GET manifest ${repo}:${reference} from ${base}`);
  assert.equal(res.headers.get("docker-content-digest"), sha256(content));
  assert.ok(body.equals(content), `manifest ${repo}:${reference} from ${base} differs`);
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  assert.equal(res.status, 200, `GET ${url}`);
  return (await res.json()) as T;
}

/** Starts an upload session; answers its Location (a path). */
export async function startUpload(base: string, repo: string): Promise<string> {
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  assert.equal(res.status, 202, `POST upload in ${repo}`);
  const location = res.headers.get("location");
  assert.ok(location, "upload Location");
  return location;
}

/** PATCHes one chunk at `start`; answers the Range the server reports. */
export async function patchChunk(base: string, location: string, chunk: Buffer, start: number): Promise<string> {
  const res = await fetch(new URL(location, base), {
    method: "PATCH",
    body: chunk,
    headers: { "Content-Type": "application/octet-stream", "Content-Range": `${start}-${start + chunk.length - 1}` },
  });
  assert.equal(res.status, 202, `PATCH ${location} at ${start}: ${await res.text()}`);
  return res.headers.get("range") ?? "";
}

/** Completes an upload with an optional final chunk; answers the response. */
export async function completeUpload(base: string, location: string, digest: string, finalChunk = Buffer.alloc(0)): Promise<Response> {
  const url = new URL(location, base);
  url.searchParams.set("digest", digest);
  return fetch(url, { method: "PUT", body: finalChunk, headers: { "Content-Type": "application/octet-stream" } });
}

/** Every `data` file under the blob store whose content does not hash to the digest its path names. */
export async function corruptStoredBlobs(root: string): Promise<string[]> {
  const blobsRoot = path.join(root, "docker/registry/v2/blobs");
  const bad: string[] = [];
  let count = 0;
  for (const entry of await readdir(blobsRoot, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (!entry.isFile() || entry.name !== "data") continue;
    const file = path.join(entry.parentPath, entry.name);
    const [algorithm, , hex] = path.relative(blobsRoot, file).split(path.sep);
    const actual = createHash(algorithm).update(await readFile(file)).digest("hex");
    count++;
    if (actual !== hex) bad.push(`${algorithm}:${hex} holds content hashing to ${actual}`);
  }
  assert.ok(count > 0, `no blob data under ${blobsRoot}`);
  return bad;
}
