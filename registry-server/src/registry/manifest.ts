// Parsing and validation of manifest bodies: OCI image manifests and indexes (with artifactType
// and subject), Docker schema 2 manifests and manifest lists. Pure functions, no storage.
import { RegistryError } from "../errors";
import { Digest } from "../reference";

export const MediaTypes = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  dockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

const IMAGE_TYPES = new Set<string>([MediaTypes.ociManifest, MediaTypes.dockerManifest]);
const INDEX_TYPES = new Set<string>([MediaTypes.ociIndex, MediaTypes.dockerList]);

/** Layers whose content lives elsewhere and need not be in the registry (image-spec "non-distributable"). */
const FOREIGN_LAYER_TYPES = new Set<string>([
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
]);

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface ParsedManifest {
  mediaType: string;
  kind: "image" | "index";
  /** Whether the body itself names its media type (otherwise it is stored beside it). */
  mediaTypeInBody: boolean;
  config?: Descriptor;
  layers: Descriptor[];
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

/** Each manifest media type we store, by itself: a parsed manifest holds the constant, not its own copy. */
const MANIFEST_TYPES = new Map<string, string>([...IMAGE_TYPES, ...INDEX_TYPES].map((t) => [t, t]));

export function isManifestMediaType(type: string): boolean {
  return MANIFEST_TYPES.has(type);
}

/** `application/x; charset=utf-8` → `application/x`. */
export function bareMediaType(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const bare = header.split(";")[0].trim().toLowerCase();
  return bare || undefined;
}

function invalid(message: string, detail?: unknown): RegistryError {
  return new RegistryError("MANIFEST_INVALID", message, detail);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function parseAnnotations(v: unknown, where: string): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (!isRecord(v) || !Object.values(v).every((x) => typeof x === "string")) {
    throw invalid(`${where}: annotations must map strings to strings`);
  }
  return v as Record<string, string>;
}

function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isRecord(v)) throw invalid(`${where}: descriptor must be an object`);
  const { mediaType, digest, size } = v;
  if (typeof mediaType !== "string" || mediaType === "") throw invalid(`${where}: descriptor needs a mediaType`);
  if (typeof digest !== "string" || !Digest.tryParse(digest)) throw invalid(`${where}: descriptor has an invalid digest`, { digest });
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) throw invalid(`${where}: descriptor has an invalid size`);
  const d: Descriptor = { mediaType, digest, size };
  if (v.artifactType !== undefined) {
    if (typeof v.artifactType !== "string") throw invalid(`${where}: artifactType must be a string`);
    d.artifactType = v.artifactType;
  }
  const annotations = parseAnnotations(v.annotations, where);
  if (annotations) d.annotations = annotations;
  if (v.urls !== undefined) {
    if (!Array.isArray(v.urls) || !v.urls.every((u) => typeof u === "string")) throw invalid(`${where}: urls must be strings`);
    d.urls = v.urls as string[];
  }
  return d;
}

function parseDescriptors(v: unknown, where: string): Descriptor[] {
  if (!Array.isArray(v)) throw invalid(`${where} must be an array`);
  return v.map((x, i) => parseDescriptor(x, `${where}[${i}]`));
}

/**
 * Validates a manifest body pushed with the given Content-Type and tells what it is.
 * The stored media type is the body's own, else the header's, else what the shape says.
 */
export function parseManifest(body: Buffer, contentType: string | undefined): ParsedManifest {
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString("utf8"));
  } catch {
    throw invalid("manifest is not valid JSON");
  }
  if (!isRecord(doc)) throw invalid("manifest must be a JSON object");
  const header = bareMediaType(contentType);
  const bodyType = doc.mediaType;
  if (bodyType !== undefined && typeof bodyType !== "string") throw invalid("mediaType must be a string");
  if (bodyType === MediaTypes.dockerSchema1 || bodyType === MediaTypes.dockerSchema1Signed || doc.schemaVersion === 1) {
    throw invalid("Docker schema 1 manifests are not supported; push schema 2 or OCI");
  }
  if (doc.schemaVersion !== 2) throw invalid("schemaVersion must be 2");
  if (bodyType !== undefined && header !== undefined && header !== bodyType) {
    throw invalid("Content-Type does not match the manifest's mediaType", { contentType: header, mediaType: bodyType });
  }

  let mediaType = bodyType ?? (header !== undefined && isManifestMediaType(header) ? header : undefined);
  if (mediaType === undefined) {
    if (bodyType === undefined && header !== undefined && header !== "application/json" && header !== "application/octet-stream") {
      throw invalid(`unsupported manifest media type ${header}`);
    }
    mediaType = "manifests" in doc ? MediaTypes.ociIndex : MediaTypes.ociManifest;
  }
  const known = MANIFEST_TYPES.get(mediaType);
  if (known === undefined) throw invalid(`unsupported manifest media type ${mediaType}`);
  mediaType = known;

  const kind = INDEX_TYPES.has(mediaType) ? "index" : "image";
  const parsed: ParsedManifest = { mediaType, kind, mediaTypeInBody: bodyType !== undefined, layers: [], manifests: [] };
  if (kind === "image") {
    parsed.config = parseDescriptor(doc.config, "config");
    parsed.layers = parseDescriptors(doc.layers, "layers");
    if ("manifests" in doc) throw invalid("an image manifest cannot list manifests");
  } else {
    parsed.manifests = parseDescriptors(doc.manifests, "manifests");
    if ("config" in doc || "layers" in doc) throw invalid("an index cannot have config or layers");
  }
  if (doc.subject !== undefined) parsed.subject = parseDescriptor(doc.subject, "subject");
  if (doc.artifactType !== undefined) {
    if (typeof doc.artifactType !== "string") throw invalid("artifactType must be a string");
    parsed.artifactType = doc.artifactType;
  }
  parsed.annotations = parseAnnotations(doc.annotations, "manifest");
  return parsed;
}

/** Blobs (not manifests) an image manifest needs in the repository before it is accepted. */
export function requiredBlobs(m: ParsedManifest): Descriptor[] {
  if (m.kind !== "image" || !m.config) return [];
  return [m.config, ...m.layers.filter((l) => !(FOREIGN_LAYER_TYPES.has(l.mediaType) && l.urls && l.urls.length > 0))];
}

/** The descriptor the referrers API lists for a manifest (distribution-spec "Listing Referrers"). */
export function referrerDescriptor(m: ParsedManifest, digest: Digest, size: number): Descriptor {
  const d: Descriptor = { mediaType: m.mediaType, digest: digest.toString(), size };
  const artifactType = m.artifactType ?? (m.kind === "image" ? m.config?.mediaType : undefined);
  if (artifactType !== undefined) d.artifactType = artifactType;
  if (m.annotations) d.annotations = m.annotations;
  return d;
}
