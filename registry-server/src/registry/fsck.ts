// Consistency check of the store (issue 5): every blob hashes to the digest its directory names,
// every link names the digest of its own path and points at content that is there, every tag
// and referrer entry points at a manifest the repository holds. With repair, what cannot be
// served is set aside: corrupt blobs go to the quarantine; dangling links, tags and referrer
// entries are removed; links with a wrong content are rewritten from their path.
//
// It may run beside a server on the same directory. Pushes write blob, revision link, referrer
// entry, then tag, and deletes go the other way, so a reference is only reported dangling when
// it is still there after its target was found missing; a directory young enough to be a write
// in progress is looked at again after a pause; every repair runs under the maintenance lock
// held exclusively (which covers a server in this process; another process's pushes are
// covered by those re-checks).
//
// Quarantine (beside the registry tree, where the server never looks):
// <root>/quarantine/<run stamp>/blobs/<alg>/<xx>/<hex>/data   a blob set aside by fsck --repair:
//                                                            its path below <root>/docker/registry/v2
import { STALE_TEMPORARY_MS, TMP_DIR } from "../storage/filesystem";
import { RegistryError } from "../errors";
import { Digest } from "../reference";
import { ifExists, StorageDriver } from "../storage/driver";
import { paths } from "../storage/paths";
import { parseManifest, ParsedManifest, referrerDescriptor, requiredBlobs } from "./manifest";
import type { Registry } from "./registry";
import { storedDigest } from "./stored-digest";
import { uploadInfo } from "./uploads";
import { forEachConcurrently, REPOSITORY_CONCURRENCY, WALK_CONCURRENCY } from "../util/concurrently";

/** Orders strings by code unit, as sort() does without a comparator. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export const quarantinePaths = {
  root: "/quarantine",
  run: (stamp: string) => `/quarantine/${stamp}`,
  /** Where an entry of the registry tree is set aside: the same path below the run's directory. */
  of: (stamp: string, path: string) => `/quarantine/${stamp}${path.slice(paths.root.length)}`,
};

/** Algorithms whose blobs can be verified (those the Digest of reference.ts accepts). */
const VERIFIABLE_ALGORITHMS = new Set(["sha256", "sha512"]);
/** The filesystem driver's temporaries; the server removes old ones at start. */
const TEMPORARIES = `/${TMP_DIR}`;
/** A directory modified this recently without its file may be a write in progress. */
const SETTLE_AGE_MS = 10_000;
const SETTLE_PAUSE_MS = 100;
const REFERRER_ENTRY_RE = /^([a-z0-9]+)-([a-zA-Z0-9=_-]+)\.json$/;

export type FsckProblemKind =
  /** Blob data that does not hash to its digest. */
  | "corrupt-blob"
  /** A blob directory whose name is not a digest, or under another two-character prefix. */
  | "misplaced-blob"
  /** A link directory without its link file, or whose name is not a digest. */
  | "invalid-link"
  /** A link file holding another digest than its path names. */
  | "link-mismatch"
  | "dangling-layer-link"
  | "dangling-revision"
  /** A tag without its link file, or whose link holds no digest. */
  | "invalid-tag"
  | "dangling-tag"
  /** A referrer entry that does not parse, is misnamed, or whose manifest names another subject. */
  | "invalid-referrer"
  | "dangling-referrer"
  /** A manifest with a subject that the referrers index does not list. */
  | "missing-referrer";

export type FsckWarningKind = "unverifiable-blob" | "invalid-manifest" | "incomplete-image";

export interface FsckFinding<K extends string = FsckProblemKind | FsckWarningKind> {
  kind: K;
  /** Store path (below the storage root) of the entry at fault. */
  path: string;
  repo?: string;
  digest?: string;
  tag?: string;
  /** What is wrong. */
  detail: string;
  /** What --repair does about it ("none" for warnings). */
  repair: string;
  /** Whether this run did the repair. */
  repaired: boolean;
  /** Why the repair failed. */
  repairError?: string;
}

export interface FsckCounts {
  blobs: number;
  bytesHashed: number;
  repositories: number;
  /** Layer links and revision links. */
  links: number;
  layerLinks: number;
  revisionLinks: number;
  tags: number;
  referrers: number;
}

export interface UploadLeftover {
  repo: string;
  id: string;
  bytes: number;
  ageMs: number;
}

export interface FsckReport {
  /** No problems (warnings allowed); false when problems were found, repaired or not. */
  ok: boolean;
  repair: boolean;
  repaired: number;
  startedAt: string;
  durationMs: number;
  checked: FsckCounts;
  problems: FsckFinding<FsckProblemKind>[];
  /** Findings that are not repaired: a layer may have been deleted on purpose. */
  warnings: FsckFinding<FsckWarningKind>[];
  leftovers: {
    /** Temporaries older than an hour (counted only: the server removes them when it starts). */
    staleTemporaries: number;
    /** Blob directories without data, left by a crash mid-publish (removed by --repair). */
    emptyBlobDirectories: number;
    uploads: UploadLeftover[];
  };
  /** Store path of the directory corrupt entries were moved to, when any were. */
  quarantine?: string;
}

export interface FsckOptions {
  /** Quarantine or remove what is found broken; otherwise nothing is changed. */
  repair?: boolean;
}

type Problem = Omit<FsckFinding<FsckProblemKind>, "repaired" | "repairError">;
type Warning = Omit<FsckFinding<FsckWarningKind>, "repaired" | "repair">;

interface DigestDir {
  path: string;
  digest: Digest | undefined;
}

/** What one repository's checks learned, for the checks that follow within it. */
interface RepoState {
  repo: string;
  /** Layer links found invalid or dangling (removed under repair). */
  deadLayers: Set<string>;
  /** Revisions found invalid or dangling (removed under repair). */
  deadRevisions: Set<string>;
  manifests: Map<string, StoredRevision>;
}

interface StoredRevision {
  digest: Digest;
  parsed: ParsedManifest;
  size: number;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Checks the whole store; with `repair`, fixes what it can. */
export function fsck(registry: Registry, options: FsckOptions = {}): Promise<FsckReport> {
  return new StoreCheck(registry, options.repair === true).run();
}

class StoreCheck {
  private readonly started = Date.now();
  private readonly stamp = new Date(this.started).toISOString().replace(/[:.]/g, "-");
  private readonly driver: StorageDriver;
  private readonly report: FsckReport;
  /** Blobs found corrupt or without data, with what is wrong. */
  private readonly badBlobs = new Map<string, string>();
  private quarantined = false;

  constructor(
    private readonly registry: Registry,
    private readonly repair: boolean,
  ) {
    this.driver = registry.driver;
    this.report = {
      ok: true,
      repair,
      repaired: 0,
      startedAt: new Date(this.started).toISOString(),
      durationMs: 0,
      checked: { blobs: 0, bytesHashed: 0, repositories: 0, links: 0, layerLinks: 0, revisionLinks: 0, tags: 0, referrers: 0 },
      problems: [],
      warnings: [],
      leftovers: { staleTemporaries: 0, emptyBlobDirectories: 0, uploads: [] },
    };
  }

  async run(): Promise<FsckReport> {
    await this.checkBlobs();
    const repos = await this.registry.catalog.allRepositoryDirectories();
    this.report.checked.repositories = repos.length;
    await forEachConcurrently(repos, REPOSITORY_CONCURRENCY, (repo) => this.checkRepository(repo));
    await this.countTemporaries();
    const { checked, problems } = this.report;
    // Checks run several at once: findings are listed by path, the same from one run to the next.
    for (const findings of [problems, this.report.warnings]) findings.sort((a, b) => compareText(a.path, b.path));
    this.report.leftovers.uploads.sort((a, b) => compareText(a.repo, b.repo) || compareText(a.id, b.id));
    checked.links = checked.layerLinks + checked.revisionLinks;
    this.report.ok = problems.length === 0;
    this.report.repaired = problems.filter((p) => p.repaired).length;
    if (this.quarantined) this.report.quarantine = quarantinePaths.run(this.stamp);
    this.report.durationMs = Date.now() - this.started;
    return this.report;
  }

  // Findings.

  private async problem(p: Problem, fix: () => Promise<unknown>): Promise<void> {
    const finding: FsckFinding<FsckProblemKind> = { ...p, repaired: false };
    this.report.problems.push(finding);
    if (!this.repair) return;
    try {
      await this.registry.maintenance.exclusive(fix);
      finding.repaired = true;
    } catch (err) {
      finding.repairError = err instanceof Error ? err.message : String(err);
    }
  }

  private warning(w: Warning): void {
    this.report.warnings.push({ ...w, repair: "none", repaired: false });
  }

  // Storage helpers.

  private async list(path: string): Promise<string[]> {
    return (await ifExists(this.driver.list(path))) ?? [];
  }

  private async exists(path: string): Promise<boolean> {
    return (await ifExists(this.driver.stat(path))) !== undefined;
  }

  private async remove(path: string): Promise<void> {
    await ifExists(this.driver.delete(path));
  }

  /** Entries `<root>/<alg>/<hex>` with the digest they name, if they name one. */
  private async digestDirs(root: string): Promise<DigestDir[]> {
    const out: DigestDir[] = [];
    for (const alg of await this.list(root)) {
      for (const hex of await this.list(`${root}/${alg}`)) out.push({ path: `${root}/${alg}/${hex}`, digest: Digest.tryParse(`${alg}:${hex}`) });
    }
    return out;
  }

  /** True when `file` is still missing from `dir` (which is still there) once a write in progress would have ended. */
  private async stillAbsent(file: string, dir: string): Promise<boolean> {
    const info = await ifExists(this.driver.stat(dir));
    if (!info) return false;
    if (Date.now() - info.modTime.getTime() < SETTLE_AGE_MS) await delay(SETTLE_PAUSE_MS);
    return !(await this.exists(file)) && (await this.exists(dir));
  }

  /** Why the blob cannot be served, or undefined when it can. */
  private async blobFault(digest: Digest): Promise<string | undefined> {
    const bad = this.badBlobs.get(digest.toString());
    if (bad) return bad;
    return (await this.exists(paths.blobData(digest))) ? undefined : "the blob is not in the store";
  }

  /** Moves an entry's data to the quarantine and removes its directory. */
  private async setAside(dir: string): Promise<void> {
    const data = `${dir}/data`;
    if (await this.exists(data)) {
      await this.driver.move(data, quarantinePaths.of(this.stamp, data));
      this.quarantined = true;
    }
    await this.remove(dir);
  }

  // Blobs.

  private async checkBlobs(): Promise<void> {
    for (const alg of await this.list(paths.blobsRoot)) {
      const algRoot = `${paths.blobsRoot}/${alg}`;
      if (!VERIFIABLE_ALGORITHMS.has(alg)) {
        this.warning({ kind: "unverifiable-blob", path: algRoot, detail: `blobs of algorithm ${alg} cannot be verified` });
        continue;
      }
      for (const prefix of await this.list(algRoot)) {
        await forEachConcurrently(await this.list(`${algRoot}/${prefix}`), WALK_CONCURRENCY, (hex) => this.checkBlob(`${algRoot}/${prefix}/${hex}`, alg, prefix, hex));
      }
    }
  }

  private async checkBlob(dir: string, alg: string, prefix: string, hex: string): Promise<void> {
    const digest = Digest.tryParse(`${alg}:${hex}`);
    if (!digest || hex.slice(0, 2) !== prefix) {
      const detail = digest ? `stored under ${prefix}/ instead of ${hex.slice(0, 2)}/` : `${hex} is not a ${alg} digest`;
      await this.problem({ kind: "misplaced-blob", path: dir, detail, repair: "move its data to the quarantine" }, () => this.setAside(dir));
      return;
    }
    this.report.checked.blobs++;
    const data = paths.blobData(digest);
    const actual = await this.hash(data, digest);
    if (actual === undefined) {
      if (!(await this.stillAbsent(data, dir))) return;
      // A crash between creating the directory and renaming the data into it leaves this:
      // nothing is served from it, so it is a leftover (a link to it is reported as dangling).
      this.badBlobs.set(digest.toString(), "the blob has no data");
      this.report.leftovers.emptyBlobDirectories++;
      if (this.repair) {
        await this.registry.maintenance.exclusive(async () => {
          if (!(await this.exists(data))) await this.remove(dir);
        });
      }
    } else if (!actual.equals(digest)) {
      this.badBlobs.set(digest.toString(), "the blob is corrupt");
      await this.problem(
        { kind: "corrupt-blob", path: data, digest: digest.toString(), detail: `data hashes to ${actual.toString()}`, repair: "move it to the quarantine" },
        () => this.setAside(dir),
      );
    }
  }

  /** Digest of the file's content in the algorithm of `like`, or undefined when there is no file. */
  private hash(path: string, like: Digest): Promise<Digest | undefined> {
    return ifExists(storedDigest(this.driver, path, like, (bytes) => (this.report.checked.bytesHashed += bytes)));
  }

  // Repositories.

  private async checkRepository(repo: string): Promise<void> {
    const state: RepoState = { repo, deadLayers: new Set(), deadRevisions: new Set(), manifests: new Map() };
    // Each step needs the one before complete (dead links, parsed manifests); within a step, entries are checked several at once.
    await forEachConcurrently(await this.digestDirs(paths.layersRoot(repo)), WALK_CONCURRENCY, async (entry) => {
      this.report.checked.layerLinks++;
      if (!(await this.checkLink(repo, entry, (d) => paths.layerLink(repo, d), "dangling-layer-link")) && entry.digest) state.deadLayers.add(entry.digest.toString());
    });
    await forEachConcurrently(await this.digestDirs(paths.revisionsRoot(repo)), WALK_CONCURRENCY, async (entry) => {
      this.report.checked.revisionLinks++;
      if (!(await this.checkLink(repo, entry, (d) => paths.revisionLink(repo, d), "dangling-revision"))) {
        if (entry.digest) state.deadRevisions.add(entry.digest.toString());
      } else if (entry.digest) {
        await this.parseRevision(state, entry.digest, entry.path);
      }
    });
    await forEachConcurrently([...state.manifests.values()], WALK_CONCURRENCY, (m) => this.checkReferences(state, m));
    await this.checkTags(state);
    await this.checkReferrers(state);
    await this.listUploads(repo);
  }

  /** Checks a layer or revision link; answers whether it names content that can be served. */
  private async checkLink(repo: string, { path: dir, digest }: DigestDir, linkOf: (d: Digest) => string, dangling: "dangling-layer-link" | "dangling-revision"): Promise<boolean> {
    if (!digest) {
      await this.problem({ kind: "invalid-link", path: dir, repo, detail: "the directory name is not a digest", repair: "remove the directory" }, () => this.remove(dir));
      return false;
    }
    const link = linkOf(digest);
    const content = await ifExists(this.driver.getContent(link));
    if (content === undefined) {
      if (!(await this.stillAbsent(link, dir))) return true;
      await this.problem({ kind: "invalid-link", path: dir, repo, digest: digest.toString(), detail: "link directory without a link file", repair: "remove the directory" }, () =>
        this.remove(dir),
      );
      return false;
    }
    const fault = await this.blobFault(digest);
    if (fault !== undefined) {
      // A link deleted meanwhile (a manifest delete, garbage collection) is no finding.
      if (!(await this.exists(link))) return false;
      await this.problem({ kind: dangling, path: link, repo, digest: digest.toString(), detail: fault, repair: "remove the link" }, async () => {
        if ((await this.blobFault(digest)) !== undefined) await this.remove(dir);
      });
      return false;
    }
    const named = content.toString("utf8").trim();
    if (named !== digest.toString()) {
      await this.problem(
        { kind: "link-mismatch", path: link, repo, digest: digest.toString(), detail: `the link holds ${JSON.stringify(named.slice(0, 200))}`, repair: `rewrite it with ${digest.toString()}` },
        () => this.driver.putContent(link, digest.toString()),
      );
    }
    return true;
  }

  private async parseRevision(state: RepoState, digest: Digest, path: string): Promise<void> {
    try {
      const { mediaType, content } = await this.registry.manifests.content(state.repo, digest);
      state.manifests.set(digest.toString(), { digest, parsed: parseManifest(content, mediaType), size: content.length });
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      if (err.code === "MANIFEST_UNKNOWN") return; // deleted meanwhile
      this.warning({ kind: "invalid-manifest", path, repo: state.repo, digest: digest.toString(), detail: err.message });
    }
  }

  private async revisionLive(state: RepoState, digest: Digest): Promise<boolean> {
    return !state.deadRevisions.has(digest.toString()) && (await this.exists(paths.revisionLink(state.repo, digest)));
  }

  private async layerLive(state: RepoState, digest: Digest): Promise<boolean> {
    return !state.deadLayers.has(digest.toString()) && (await this.exists(paths.layerLink(state.repo, digest))) && (await this.blobFault(digest)) === undefined;
  }

  /** What a manifest references must be in the repository; its referrer entry must be listed. */
  private async checkReferences(state: RepoState, { digest, parsed: m, size }: StoredRevision): Promise<void> {
    const { repo } = state;
    const missing: string[] = [];
    for (const d of requiredBlobs(m)) {
      if (!(await this.layerLive(state, Digest.parse(d.digest)))) missing.push(d.digest);
    }
    for (const d of m.manifests) {
      if (!(await this.revisionLive(state, Digest.parse(d.digest)))) missing.push(d.digest);
    }
    if (missing.length > 0) {
      this.warning({ kind: "incomplete-image", path: paths.revisionLink(repo, digest), repo, digest: digest.toString(), detail: `the repository lacks ${missing.join(", ")}` });
    }
    const subject = m.subject ? Digest.tryParse(m.subject.digest) : undefined;
    if (!subject) return;
    const entry = paths.referrerEntry(repo, subject, digest);
    if ((await this.exists(entry)) || !(await this.revisionLive(state, digest))) return;
    await this.problem(
      { kind: "missing-referrer", path: entry, repo, digest: digest.toString(), detail: `not listed among the referrers of ${subject.toString()}`, repair: "write the entry" },
      () => this.driver.publish([this.registry.referrers.addStep(repo, subject, digest, referrerDescriptor(m, digest, size))]),
    );
  }

  private async checkTags(state: RepoState): Promise<void> {
    const { repo } = state;
    await forEachConcurrently(await this.list(paths.tagsRoot(repo)), WALK_CONCURRENCY, async (tag) => {
      this.report.checked.tags++;
      const link = paths.tagLink(repo, tag);
      const dir = paths.tagDir(repo, tag);
      const removeTag = () => this.remove(dir);
      const content = await ifExists(this.driver.getContent(link));
      if (content === undefined) {
        if (await this.stillAbsent(link, dir)) {
          await this.problem({ kind: "invalid-tag", path: dir, repo, tag, detail: "tag without a current/link file", repair: "remove the tag" }, removeTag);
        }
        return;
      }
      const named = content.toString("utf8").trim();
      const digest = Digest.tryParse(named);
      if (!digest) {
        await this.problem({ kind: "invalid-tag", path: link, repo, tag, detail: `the link holds ${JSON.stringify(named.slice(0, 200))}, not a digest`, repair: "remove the tag" }, removeTag);
        return;
      }
      if (await this.revisionLive(state, digest)) return;
      // A tag moved meanwhile is no finding; a tag moved before the repair is left alone.
      const stillPointsThere = async () => (await this.registry.tags.get(repo, tag))?.equals(digest) === true && !(await this.revisionLive(state, digest));
      if (!(await stillPointsThere())) return;
      await this.problem(
        { kind: "dangling-tag", path: link, repo, tag, digest: digest.toString(), detail: "the tag points at a manifest the repository does not hold", repair: "remove the tag" },
        async () => {
          if (await stillPointsThere()) await removeTag();
        },
      );
    });
  }

  private async checkReferrers(state: RepoState): Promise<void> {
    const { repo } = state;
    for (const { path: dir, digest: subject } of await this.digestDirs(paths.referrersRoot(repo))) {
      if (!subject) {
        await this.problem({ kind: "invalid-referrer", path: dir, repo, detail: "the directory name is not a digest", repair: "remove the directory" }, () => this.remove(dir));
        continue;
      }
      for (const name of await this.list(dir)) {
        this.report.checked.referrers++;
        await this.checkReferrer(state, subject, `${dir}/${name}`, name);
      }
    }
  }

  private async checkReferrer(state: RepoState, subject: Digest, path: string, name: string): Promise<void> {
    const { repo } = state;
    const m = REFERRER_ENTRY_RE.exec(name);
    const referrer = m ? Digest.tryParse(`${m[1]}:${m[2]}`) : undefined;
    const base = { path, repo, digest: referrer?.toString() };
    const remove = () => this.remove(path);
    if (!referrer) {
      await this.problem({ ...base, kind: "invalid-referrer", detail: "the entry's name is not <alg>-<hex>.json", repair: "remove the entry" }, remove);
      return;
    }
    if (!(await this.revisionLive(state, referrer))) {
      if (!(await this.exists(path))) return;
      await this.problem({ ...base, kind: "dangling-referrer", detail: `lists a manifest the repository does not hold as a referrer of ${subject.toString()}`, repair: "remove the entry" }, async () => {
        if (!(await this.revisionLive(state, referrer))) await remove();
      });
      return;
    }
    const manifest = state.manifests.get(referrer.toString());
    if (manifest && manifest.parsed.subject?.digest !== subject.toString()) {
      const detail = `the manifest's subject is ${manifest.parsed.subject?.digest ?? "absent"}, not ${subject.toString()}`;
      await this.problem({ ...base, kind: "invalid-referrer", detail, repair: "remove the entry" }, remove);
      return;
    }
    const content = await ifExists(this.driver.getContent(path));
    if (content === undefined || describesManifest(content, referrer)) return;
    const rewrite = manifest
      ? () => this.driver.putContent(path, JSON.stringify(referrerDescriptor(manifest.parsed, referrer, manifest.size)))
      : remove;
    await this.problem(
      { ...base, kind: "invalid-referrer", detail: "the entry is not the manifest's descriptor", repair: manifest ? "rewrite it from the manifest" : "remove the entry" },
      rewrite,
    );
  }

  // Leftovers.

  private async listUploads(repo: string): Promise<void> {
    for (const id of await this.list(paths.uploadsRoot(repo))) {
      const info = await uploadInfo(this.driver, repo, id);
      if (!info) continue;
      this.report.leftovers.uploads.push({ repo, id, bytes: info.isDir ? 0 : info.size, ageMs: Math.max(0, this.started - info.modTime.getTime()) });
    }
  }

  private async countTemporaries(): Promise<void> {
    for (const name of await this.list(TEMPORARIES)) {
      const info = await ifExists(this.driver.stat(`${TEMPORARIES}/${name}`));
      if (info && this.started - info.modTime.getTime() > STALE_TEMPORARY_MS) this.report.leftovers.staleTemporaries++;
    }
  }
}

/** Whether a referrer entry parses as a descriptor of the given manifest. */
function describesManifest(content: Buffer, digest: Digest): boolean {
  try {
    const doc = JSON.parse(content.toString("utf8")) as { digest?: unknown; mediaType?: unknown; size?: unknown };
    return doc.digest === digest.toString() && typeof doc.mediaType === "string" && typeof doc.size === "number";
  } catch {
    return false;
  }
}
