// Manifests: content lives in the global blob store under its digest, a repository holds a
// revision link per manifest, tags point at revisions, and manifests with a subject are indexed
// for the referrers API. Content is immutable by digest, so it is cached in memory (bounded)
// and a GET by tag costs one small read and one stat.
import { RegistryError } from "../errors";
import { Digest, Reference } from "../reference";
import { exists, ifExists, PublishStep, StorageDriver } from "../storage/driver";
import { listDigestDirectories, paths } from "../storage/paths";
import type { BlobStore } from "./blobs";
import type { Catalog } from "./catalog";
import { Descriptor, MediaTypes, parseManifest, ParsedManifest, referrerDescriptor, requiredBlobs } from "./manifest";
import type { ReferrerIndex } from "./referrers";
import type { TagStore } from "./tags";

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/**
 * Manifest content kept in memory, in bytes with each entry's overhead: a couple of thousand
 * manifests, the images a cluster pulls. Every cache fills to its bound in a long run, and
 * RSS grows until they are full (issue 4 asks for no growth across runs): at 4 MiB of content
 * (6-7 MiB of heap) this cache kept RSS growing for four rounds of the bench's 2,000 images.
 * A miss costs one small read, made on the event loop when the file was seen recently.
 */
const CACHE_BYTES = 2 * 1024 * 1024;
/** What an entry holds besides its content (its digest key, the Buffer and the entry), counted against CACHE_BYTES. */
const ENTRY_OVERHEAD_BYTES = 256;

export interface StoredManifest {
  digest: Digest;
  mediaType: string;
  content: Buffer;
}

export interface PutResult {
  digest: Digest;
  subject?: Digest;
}

/** A byte-bounded LRU of manifest content by digest. */
class ContentCache {
  private readonly entries = new Map<string, { mediaType: string; content: Buffer }>();
  private bytes = 0;

  get(key: string): { mediaType: string; content: Buffer } | undefined {
    const e = this.entries.get(key);
    if (e) {
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    return e;
  }

  set(key: string, value: { mediaType: string; content: Buffer }): void {
    if (value.content.length > CACHE_BYTES / 8) return;
    this.delete(key);
    this.entries.set(key, value);
    this.bytes += value.content.length + ENTRY_OVERHEAD_BYTES;
    while (this.bytes > CACHE_BYTES) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.delete(oldest);
    }
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (e) {
      this.bytes -= e.content.length + ENTRY_OVERHEAD_BYTES;
      this.entries.delete(key);
    }
  }
}

/** Cache key of a manifest whose media type depends on the repository (its body names none). */
function repoCacheKey(repo: string, digest: Digest): string {
  return `${repo}@${digest.toString()}`;
}

export class ManifestStore {
  private readonly cache = new ContentCache();

  constructor(
    private readonly driver: StorageDriver,
    private readonly blobs: BlobStore,
    private readonly tags: TagStore,
    private readonly referrers: ReferrerIndex,
    private readonly catalog: Catalog,
  ) {}

  async exists(repo: string, digest: Digest): Promise<boolean> {
    return exists(this.driver.stat(paths.revisionLink(repo, digest)));
  }

  /** Resolves a tag or digest to a digest present in the repository, or MANIFEST_UNKNOWN. */
  async resolve(repo: string, ref: Reference): Promise<Digest> {
    let digest: Digest | undefined;
    let present: boolean | undefined;
    if (ref.kind === "digest") digest = ref.digest;
    else {
      // The revision of the digest the tag last held is checked while the tag is: one round trip when it has not moved.
      const guess = this.tags.peek(repo, ref.tag);
      const [tagged, guessPresent] = await Promise.all([this.tags.get(repo, ref.tag), guess && this.exists(repo, guess)]);
      digest = tagged;
      if (guess && tagged?.equals(guess)) present = guessPresent;
    }
    if (!digest || !(present ?? (await this.exists(repo, digest)))) {
      throw new RegistryError("MANIFEST_UNKNOWN", undefined, ref.kind === "tag" ? { tag: ref.tag } : { digest: ref.digest.toString() });
    }
    return digest;
  }

  async get(repo: string, ref: Reference): Promise<StoredManifest> {
    const digest = await this.resolve(repo, ref);
    return { digest, ...(await this.content(repo, digest)) };
  }

  /** Content and media type of a manifest known to be in the repository. */
  async content(repo: string, digest: Digest): Promise<{ mediaType: string; content: Buffer }> {
    const hit = this.cache.get(digest.toString()) ?? this.cache.get(repoCacheKey(repo, digest));
    if (hit) return hit;
    const content = await ifExists(this.blobs.getContent(digest));
    if (!content) throw new RegistryError("MANIFEST_UNKNOWN", undefined, { digest: digest.toString() });
    const { mediaType, inBody } = await this.storedMediaType(repo, digest, content);
    const entry = { mediaType, content };
    this.cache.set(inBody ? digest.toString() : repoCacheKey(repo, digest), entry);
    return entry;
  }

  /** The body's own media type (the same in every repository), else the one stored beside the revision. */
  private async storedMediaType(repo: string, digest: Digest, content: Buffer): Promise<{ mediaType: string; inBody: boolean }> {
    let doc: { mediaType?: unknown; manifests?: unknown } = {};
    try {
      doc = JSON.parse(content.toString("utf8")) as typeof doc;
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
    }
    if (typeof doc.mediaType === "string") return { mediaType: doc.mediaType, inBody: true };
    const stored = await ifExists(this.driver.getContent(paths.revisionMediaType(repo, digest)));
    if (stored) return { mediaType: stored.toString("utf8").trim(), inBody: false };
    return { mediaType: doc.manifests !== undefined ? MediaTypes.ociIndex : MediaTypes.ociManifest, inBody: false };
  }

  /** Parsed form of a stored manifest (for deletes and garbage collection). */
  async parsed(repo: string, digest: Digest): Promise<ParsedManifest | undefined> {
    try {
      const { mediaType, content } = await this.content(repo, digest);
      return parseManifest(content, mediaType);
    } catch (err) {
      if (err instanceof RegistryError) return undefined;
      throw err;
    }
  }

  /**
   * Validates and stores a manifest pushed by tag or digest. Writes go blob, revision link,
   * referrer entry, then tag, in one ordered publication, so a crash never leaves a tag
   * pointing at nothing.
   */
  async put(repo: string, ref: Reference, content: Buffer, contentType: string | undefined): Promise<PutResult> {
    return this.blobs.maintenance.shared(() => this.putLocked(repo, ref, content, contentType));
  }

  private async putLocked(repo: string, ref: Reference, content: Buffer, contentType: string | undefined): Promise<PutResult> {
    const parsed = parseManifest(content, contentType);
    const algorithm = ref.kind === "digest" ? ref.digest.algorithm : "sha256";
    const digest = Digest.of(algorithm, content);
    if (ref.kind === "digest" && !digest.equals(ref.digest)) {
      throw new RegistryError("DIGEST_INVALID", "manifest content does not match the digest in the URL", {
        expected: ref.digest.toString(),
        actual: digest.toString(),
      });
    }
    await this.checkReferences(repo, parsed);

    const firstManifest = !(await this.hasManifests(repo));
    // One publication, in this order: content, revision, referrer entry, tag.
    const steps: PublishStep[] = [];
    if (!parsed.mediaTypeInBody) steps.push({ path: paths.revisionMediaType(repo, digest), content: parsed.mediaType });
    if (!(await exists(this.driver.touch(paths.revisionLink(repo, digest))))) {
      steps.push({ path: paths.revisionLink(repo, digest), content: digest.toString() });
    }
    let subject: Digest | undefined;
    if (parsed.subject) {
      subject = Digest.parse(parsed.subject.digest);
      steps.push(this.referrers.addStep(repo, subject, digest, referrerDescriptor(parsed, digest, content.length)));
    }
    if (ref.kind === "tag") steps.push(...(await this.tags.setSteps(repo, ref.tag, digest)));
    await this.blobs.putContent(digest, content, steps);
    this.cache.set(parsed.mediaTypeInBody ? digest.toString() : repoCacheKey(repo, digest), { mediaType: parsed.mediaType, content });
    if (firstManifest) await this.catalog.bump();
    return { digest, subject };
  }

  private async checkReferences(repo: string, m: ParsedManifest): Promise<void> {
    const missing: Descriptor[] = [];
    // Each reference is refreshed as it is checked, so garbage collection keeps it.
    await Promise.all(
      requiredBlobs(m).map(async (d) => {
        const digest = Digest.parse(d.digest);
        if (!(await exists(this.driver.touch(paths.layerLink(repo, digest)))) || !(await this.blobs.touch(digest))) missing.push(d);
      }),
    );
    await Promise.all(
      m.manifests.map(async (d) => {
        if (!(await exists(this.driver.touch(paths.revisionLink(repo, Digest.parse(d.digest)))))) missing.push(d);
      }),
    );
    if (missing.length > 0) {
      throw new RegistryError("MANIFEST_BLOB_UNKNOWN", undefined, { digests: missing.map((d) => d.digest) });
    }
  }

  async hasManifests(repo: string): Promise<boolean> {
    return exists(this.driver.stat(paths.manifestsRoot(repo)));
  }

  /** Removes a tag only; MANIFEST_UNKNOWN when there is no such tag. */
  async deleteTag(repo: string, tag: string): Promise<void> {
    if (!(await this.tags.delete(repo, tag))) throw new RegistryError("MANIFEST_UNKNOWN", undefined, { tag });
  }

  /** Removes a manifest, every tag pointing at it and its referrer entry. */
  async delete(repo: string, digest: Digest): Promise<void> {
    if (!(await this.exists(repo, digest))) throw new RegistryError("MANIFEST_UNKNOWN", undefined, { digest: digest.toString() });
    const parsed = await this.parsed(repo, digest);
    for (const { tag, digest: d } of await this.tags.entries(repo)) {
      if (d.equals(digest)) await this.tags.delete(repo, tag);
    }
    await this.removeRevision(repo, digest, parsed);
    await this.dropIfEmpty(repo);
  }

  /** Removes a manifest's revision and referrer entry (not its tags, not its content). */
  async removeRevision(repo: string, digest: Digest, parsed: ParsedManifest | undefined): Promise<void> {
    if (parsed?.subject) {
      const subject = Digest.tryParse(parsed.subject.digest);
      if (subject) await this.referrers.remove(repo, subject, digest);
    }
    this.cache.delete(digest.toString());
    this.cache.delete(repoCacheKey(repo, digest));
    await ifExists(this.driver.delete(paths.revisionDir(repo, digest)));
  }

  /** A repository whose last manifest went leaves the catalog (distribution#2747). */
  async dropIfEmpty(repo: string): Promise<void> {
    const revisions = await this.revisions(repo);
    if (revisions.length > 0) return;
    await this.driver.delete(paths.manifestsRoot(repo)).catch(() => undefined);
    await this.driver.delete(paths.referrersRoot(repo)).catch(() => undefined);
    await this.catalog.bump();
  }

  /** When the manifest was last pushed or referenced (its revision link's modification time). */
  async lastReferenced(repo: string, digest: Digest): Promise<number | undefined> {
    return (await ifExists(this.driver.stat(paths.revisionLink(repo, digest))))?.modTime.getTime();
  }

  /** Every manifest digest present in the repository. */
  async revisions(repo: string): Promise<Digest[]> {
    return listDigestDirectories(this.driver, paths.revisionsRoot(repo));
  }
}
