// Small helpers for tests that speak the registry API over HTTP.
import { createHash, randomBytes } from "node:crypto";
import * as http from "node:http";

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip";
export const OCI_EMPTY = "application/vnd.oci.empty.v1+json";
export const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
export const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
export const DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";
export const DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip";

export function sha256(content: Buffer | string): string {
  return `sha256:${createHash("sha256").update(content).digest("hex")}`;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

export function descriptor(mediaType: string, content: Buffer): Descriptor {
  return { mediaType, digest: sha256(content), size: content.length };
}

/** Uploads a blob in one POST (?digest=) and returns its digest. */
export async function pushBlob(base: string, repo: string, content: Buffer): Promise<string> {
  const digest = sha256(content);
  const res = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${digest}`, {
    method: "POST",
    body: content,
    headers: { "Content-Type": "application/octet-stream" },
  });
  if (res.status !== 201) throw new Error(`blob push to ${repo} answered ${res.status}: ${await res.text()}`);
  return digest;
}

export async function putManifest(base: string, repo: string, reference: string, body: Buffer, contentType: string): Promise<Response> {
  return fetch(`${base}/v2/${repo}/manifests/${reference}`, { method: "PUT", body, headers: { "Content-Type": contentType } });
}

export interface PushedImage {
  digest: string;
  manifest: Buffer;
  config: Buffer;
  layer: Buffer;
  mediaType: string;
}

export interface ImageOptions {
  mediaType?: string;
  configMediaType?: string;
  layerMediaType?: string;
  artifactType?: string;
  subject?: Descriptor;
  annotations?: Record<string, string>;
  /** Content of the layer (random when absent). */
  layer?: Buffer;
  config?: Buffer;
}

export function imageManifest(config: Buffer, layers: Buffer[], options: ImageOptions = {}): Buffer {
  const mediaType = options.mediaType ?? OCI_MANIFEST;
  const docker = mediaType === DOCKER_MANIFEST;
  const doc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType,
    ...(options.artifactType ? { artifactType: options.artifactType } : {}),
    config: descriptor(options.configMediaType ?? (docker ? DOCKER_CONFIG : OCI_CONFIG), config),
    layers: layers.map((l) => descriptor(options.layerMediaType ?? (docker ? DOCKER_LAYER : OCI_LAYER), l)),
    ...(options.subject ? { subject: options.subject } : {}),
    ...(options.annotations ? { annotations: options.annotations } : {}),
  };
  return Buffer.from(JSON.stringify(doc));
}

/** Pushes a config, one layer and a manifest; tags it when `tag` is given. */
export async function pushImage(base: string, repo: string, tag: string | undefined, options: ImageOptions = {}): Promise<PushedImage> {
  const config = options.config ?? Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", nonce: randomBytes(8).toString("hex") }));
  const layer = options.layer ?? randomBytes(256);
  await pushBlob(base, repo, config);
  await pushBlob(base, repo, layer);
  const manifest = imageManifest(config, [layer], options);
  const mediaType = options.mediaType ?? OCI_MANIFEST;
  const digest = sha256(manifest);
  const res = await putManifest(base, repo, tag ?? digest, manifest, mediaType);
  if (res.status !== 201) throw new Error(`manifest push answered ${res.status}: ${await res.text()}`);
  return { digest, manifest, config, layer, mediaType };
}

/** The OCI error code of a response body (first entry). */
export async function errorCode(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: { code: string }[] };
  return body.errors?.[0]?.code;
}

/** A request whose path is sent exactly as given (fetch would normalise `..` and `%2e`). */
export function rawRequest(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * POST /_registry/gc once what was written just before has left the collector's clock margin
 * (it keeps anything touched within 50 ms of its start, as fresh).
 */
export async function collectGarbage(base: string, query = ""): Promise<Response> {
  await new Promise((r) => setTimeout(r, 80));
  return fetch(`${base}/_registry/gc${query}`, { method: "POST" });
}
