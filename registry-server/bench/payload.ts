// Blob contents without holding blobs in memory: a 16 MiB random pattern repeated, with a unique
// id in front so that content addressing never dedupes two blobs (across phases, rounds, runs).
import { createHash, randomBytes } from "node:crypto";

const PATTERN_BYTES = 16 << 20;
/** Size of the pieces handed to the socket (and the hash) at a time. */
const PIECE_BYTES = 1 << 20;

let pattern: Buffer | undefined;

function thePattern(): Buffer {
  pattern ??= randomBytes(PATTERN_BYTES);
  return pattern;
}

/** Bytes [start, end) of the blob named `id` (of any size ≥ end): views, never copies. */
export function* payload(id: string, start: number, end: number): Generator<Buffer> {
  const prefix = Buffer.from(`${id}\n`);
  let pos = start;
  while (pos < end) {
    if (pos < prefix.length) {
      const piece = prefix.subarray(pos, Math.min(prefix.length, end));
      yield piece;
      pos += piece.length;
      continue;
    }
    const at = pos % PATTERN_BYTES;
    const n = Math.min(PIECE_BYTES, PATTERN_BYTES - at, end - pos);
    yield thePattern().subarray(at, at + n);
    pos += n;
  }
}

export function sha256(data: Buffer | Iterable<Buffer>): string {
  const hash = createHash("sha256");
  if (Buffer.isBuffer(data)) hash.update(data);
  else for (const chunk of data) hash.update(chunk);
  return `sha256:${hash.digest("hex")}`;
}

/** A small blob whole (layers of small images). */
export function payloadBuffer(id: string, size: number): Buffer {
  return Buffer.concat([...payload(id, 0, size)], size);
}

/** A blob to push, with its digest computed before any timing starts. */
export interface BigBlob {
  id: string;
  size: number;
  digest: string;
}

export function prepareBlob(id: string, size: number): BigBlob {
  return { id, size, digest: sha256(payload(id, 0, size)) };
}

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** A small image: a unique layer, a config naming it, and an OCI manifest of both. */
export interface SmallImage {
  layer: Buffer;
  layerDigest: string;
  config: Buffer;
  configDigest: string;
  manifest: Buffer;
  manifestDigest: string;
}

export function makeImage(id: string, layerBytes: number): SmallImage {
  const layer = payloadBuffer(id, layerBytes);
  const layerDigest = sha256(layer);
  const config = Buffer.from(
    JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [layerDigest] }, config: { Labels: { "bench.id": id } } }),
  );
  const configDigest = sha256(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
      layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layerDigest, size: layer.length }],
    }),
  );
  return { layer, layerDigest, config, configDigest, manifest, manifestDigest: sha256(manifest) };
}
