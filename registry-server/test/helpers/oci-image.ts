// Builds tiny but real OCI images in pure Node: a gzip'd tar layer with one
// file, an OCI config, a manifest, optionally an image index for several
// architectures, and writes them as an OCI image layout directory
// (oci-layout, index.json, blobs/sha256/...) that skopeo reads as `oci:<dir>:<tag>`.
import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { gzipSync } from "node:zlib";

export const MEDIA_TYPE = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

const REF_NAME = "org.opencontainers.image.ref.name";
const CREATED = "2024-01-01T00:00:00Z";

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

/** A blob with its bytes and descriptor. */
export interface Blob extends Descriptor {
  data: Buffer;
}

export interface TarFile {
  name: string;
  content: string | Buffer;
  /** Octal permission bits; default 0o644. */
  mode?: number;
}

export interface ImageOptions {
  /** Default "amd64". */
  architecture?: string;
  /** Default "linux". */
  os?: string;
  /** Files of the single layer; default one `hello.txt` naming the architecture. */
  files?: TarFile[];
  /** Config labels. */
  labels?: Record<string, string>;
}

export interface Image {
  platform: Platform;
  /** The files in the layer. */
  files: TarFile[];
  manifest: Blob;
  config: Blob;
  layer: Blob;
  /** sha256 of the uncompressed layer tar (the config's rootfs.diff_ids[0]). */
  diffId: string;
  /** Every blob of the image, manifest included. */
  blobs: Blob[];
}

export interface ImageIndex {
  index: Blob;
  images: Image[];
  /** Every blob, index included. */
  blobs: Blob[];
}

export function sha256(data: Buffer | string): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

function blob(mediaType: string, data: Buffer): Blob {
  return { mediaType, digest: sha256(data), size: data.length, data };
}

/** The descriptor of a blob, without its bytes (what a manifest or index embeds). */
export function descriptorOf(b: Blob, extra: Partial<Descriptor> = {}): Descriptor {
  return { mediaType: b.mediaType, digest: b.digest, size: b.size, ...extra };
}

function jsonBlob(mediaType: string, value: unknown): Blob {
  return blob(mediaType, Buffer.from(JSON.stringify(value)));
}

/** Writes `value` as a NUL-terminated, zero-padded octal field of `width` bytes. */
function octal(header: Buffer, offset: number, width: number, value: number): void {
  header.write(value.toString(8).padStart(width - 1, "0") + "\0", offset, width, "ascii");
}

/** A minimal POSIX ustar archive of regular files (no directories needed for a layer). */
export function makeTar(files: readonly TarFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const content = Buffer.isBuffer(f.content) ? f.content : Buffer.from(f.content, "utf8");
    if (Buffer.byteLength(f.name) > 100) throw new Error(`tar name too long: ${f.name}`);
    const h = Buffer.alloc(512);
    h.write(f.name, 0, 100, "utf8");
    octal(h, 100, 8, f.mode ?? 0o644); // mode
    octal(h, 108, 8, 0); // uid
    octal(h, 116, 8, 0); // gid
    octal(h, 124, 12, content.length); // size
    octal(h, 136, 12, Date.parse(CREATED) / 1000); // mtime
    h.write("        ", 148, 8, "ascii"); // checksum is computed with this field as spaces
    h.write("0", 156, 1, "ascii"); // typeflag: regular file
    h.write("ustar\0", 257, 6, "ascii"); // magic
    h.write("00", 263, 2, "ascii"); // version
    h.write("root", 265, 32, "ascii"); // uname
    h.write("root", 297, 32, "ascii"); // gname
    let sum = 0;
    for (const byte of h) sum += byte;
    h.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8, "ascii");
    parts.push(h, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024)); // end of archive: two zero blocks
  return Buffer.concat(parts);
}

/** Reads the regular files of an uncompressed ustar archive (the inverse of makeTar). */
export function readTar(tar: Buffer): TarFile[] {
  const files: TarFile[] = [];
  for (let off = 0; off + 512 <= tar.length; ) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const field = (start: number, width: number) => h.toString("utf8", start, start + width).replace(/\0.*$/s, "");
    const size = parseInt(field(124, 12).trim() || "0", 8);
    const prefix = field(345, 155);
    const name = (prefix ? prefix + "/" : "") + field(0, 100);
    const type = field(156, 1) || "0";
    off += 512;
    if (type === "0") files.push({ name, content: tar.subarray(off, off + size), mode: parseInt(field(100, 8), 8) });
    off += Math.ceil(size / 512) * 512;
  }
  return files;
}

/** Builds one single-layer image in memory. */
export function buildImage(opts: ImageOptions = {}): Image {
  const platform: Platform = { architecture: opts.architecture ?? "amd64", os: opts.os ?? "linux" };
  const files = opts.files ?? [{ name: "hello.txt", content: `hello from ${platform.os}/${platform.architecture}\n` }];
  const tar = makeTar(files);
  const diffId = sha256(tar);
  const layer = blob(MEDIA_TYPE.ociLayerGzip, gzipSync(tar));
  const config = jsonBlob(MEDIA_TYPE.ociConfig, {
    created: CREATED,
    architecture: platform.architecture,
    os: platform.os,
    config: { Labels: opts.labels ?? {} },
    rootfs: { type: "layers", diff_ids: [diffId] },
    history: [{ created: CREATED, created_by: `test: add ${files.map((f) => f.name).join(", ")}` }],
  });
  const manifest = jsonBlob(MEDIA_TYPE.ociManifest, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociManifest,
    config: descriptorOf(config),
    layers: [descriptorOf(layer)],
  });
  return { platform, files, manifest, config, layer, diffId, blobs: [layer, config, manifest] };
}

/** Builds one image per architecture and an OCI image index over them. */
export function buildImageIndex(architectures: readonly string[] = ["amd64", "arm64"]): ImageIndex {
  const images = architectures.map((architecture) => buildImage({ architecture }));
  const index = jsonBlob(MEDIA_TYPE.ociIndex, {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE.ociIndex,
    manifests: images.map((img) => descriptorOf(img.manifest, { platform: img.platform })),
  });
  return { index, images, blobs: [...images.flatMap((i) => i.blobs), index] };
}

/**
 * Writes an OCI image layout at `dir` holding `blobs`, whose index.json points
 * at `top` (a manifest or an index) under the ref name `tag`.
 */
export async function writeOciLayout(dir: string, top: Blob, blobs: readonly Blob[], tag = "latest"): Promise<void> {
  const blobDir = path.join(dir, "blobs", "sha256");
  await mkdir(blobDir, { recursive: true });
  for (const b of blobs) await writeFile(path.join(blobDir, b.digest.slice("sha256:".length)), b.data);
  await writeFile(path.join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(
    path.join(dir, "index.json"),
    JSON.stringify({ schemaVersion: 2, manifests: [descriptorOf(top, { annotations: { [REF_NAME]: tag } })] }),
  );
}

/** Builds an image and writes it as an OCI layout; returns the image (all digests). */
export async function writeImageLayout(dir: string, opts: ImageOptions & { tag?: string } = {}): Promise<Image> {
  const image = buildImage(opts);
  await writeOciLayout(dir, image.manifest, image.blobs, opts.tag);
  return image;
}

/** Builds a multi-arch index and writes it as an OCI layout; returns the index (all digests). */
export async function writeIndexLayout(
  dir: string,
  opts: { architectures?: string[]; tag?: string } = {},
): Promise<ImageIndex> {
  const idx = buildImageIndex(opts.architectures);
  await writeOciLayout(dir, idx.index, idx.blobs, opts.tag);
  return idx;
}
