// What the capacity tests share: docker-style streamed pushes, and what is on disk.
import assert from "node:assert/strict";
import * as http from "node:http";
import { readdir, stat } from "node:fs/promises";
import * as path from "node:path";
import { sha256 } from "../helpers/registry";

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A request whose body goes out chunked, without Content-Length, as docker streams layers. */
export function streamedRequest(url: string, method: string, body: Buffer, chunkSize = 64 * 1024): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { "Content-Type": "application/octet-stream" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    // The server may answer (507) before it has read everything: that is the answer we want.
    req.on("error", reject);
    for (let i = 0; i < body.length; i += chunkSize) req.write(body.subarray(i, i + chunkSize));
    req.end();
  });
}

export function errorOf(res: RawResponse): { code: string; message: string; detail?: Record<string, unknown> } {
  const doc = JSON.parse(res.body.toString("utf8")) as { errors: { code: string; message: string; detail?: Record<string, unknown> }[] };
  return doc.errors[0];
}

/** Pushes a blob as docker does (POST, streamed PATCH, PUT ?digest=); answers the failing response, if any. */
export async function pushBlobStreamed(base: string, repo: string, content: Buffer): Promise<RawResponse | undefined> {
  const started = await fetch(`${base}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  assert.equal(started.status, 202, `POST upload: ${await started.text()}`);
  const location = new URL(started.headers.get("location") ?? "", base).toString();
  const patched = await streamedRequest(location, "PATCH", content);
  if (patched.status !== 202) return patched;
  const done = await fetch(`${location}?digest=${sha256(content)}`, { method: "PUT" });
  if (done.status === 201) return undefined;
  return { status: done.status, headers: {}, body: Buffer.from(await done.arrayBuffer()) };
}

/** Files under a directory, recursively, with their sizes (empty when it does not exist). */
export async function filesUnder(dir: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const visit = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await visit(p);
      else out.set(p, (await stat(p)).size);
    }
  };
  await visit(dir);
  return out;
}

export const blobsDir = (root: string) => path.join(root, "docker/registry/v2/blobs");

/** Sizes of the data of every upload session in the store. */
export async function uploadSizes(root: string): Promise<number[]> {
  const files = await filesUnder(path.join(root, "docker/registry/v2/repositories"));
  return [...files].filter(([p]) => p.includes(`${path.sep}_uploads${path.sep}`)).map(([, size]) => size);
}

/** Bytes and count of the blobs stored (every blobs/<alg>/<xx>/<hex>/data). */
export async function storedBlobs(root: string): Promise<{ bytes: number; blobs: number }> {
  let bytes = 0;
  let blobs = 0;
  for (const [, size] of await filesUnder(blobsDir(root))) {
    bytes += size;
    blobs++;
  }
  return { bytes, blobs };
}
