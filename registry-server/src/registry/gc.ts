// Online garbage collection (what distribution#1609 asks for): it runs while pushes and pulls
// go on.
//
// Mark: per repository, apply retention, then keep every tagged manifest, every manifest
// pushed or referenced within the grace period, and (to a fixpoint) the children of kept
// indexes and the referrers of kept subjects. The blobs those manifests use, and blobs linked
// within the grace period, are live.
// Sweep: untagged unreferenced manifests, stale layer links, unreferenced blobs, abandoned
// uploads and emptied repositories. Every delete is re-checked under the maintenance lock held
// exclusively: pushes hold it shared while they publish a reference and refresh the
// modification time of what they reference, so a reference made after the mark is seen.
import { Digest } from "../reference";
import { ifExists } from "../storage/driver";
import { listDigestDirectories, paths } from "../storage/paths";
import type { RetentionPolicy } from "../config";
import type { ParsedManifest } from "./manifest";
import type { Registry } from "./registry";
import { policyFor, tagsToExpire } from "./retention";
import { uploadInfo } from "./uploads";
import { forEachConcurrently, REPOSITORY_CONCURRENCY, WALK_CONCURRENCY } from "../util/concurrently";
import { exclusiveInTurn } from "../util/rw-lock";

const COARSE_CLOCK_MARGIN_MS = 50;

export interface GcOptions {
  dryRun?: boolean;
  /** Anything created or referenced more recently than this is kept. */
  gracePeriodMs: number;
  /** Collect manifests that no tag, index or subject keeps. */
  deleteUntagged: boolean;
  /** Remove upload sessions idle for longer than this (undefined: keep them). */
  uploadMaxAgeMs?: number;
  retention?: RetentionPolicy[];
  /** Only these repositories (for tests and targeted clean-ups); blobs are then not swept. */
  repositories?: string[];
}

export interface GcReport {
  dryRun: boolean;
  startedAt: string;
  durationMs: number;
  repositories: number;
  tagsDeleted: string[];
  manifestsDeleted: string[];
  layerLinksDeleted: number;
  blobsDeleted: number;
  bytesFreed: number;
  uploadsPurged: number;
  repositoriesDeleted: string[];
  blobsKept: number;
  bytesKept: number;
}

function emptyReport(dryRun: boolean): GcReport {
  return {
    dryRun,
    startedAt: new Date().toISOString(),
    durationMs: 0,
    repositories: 0,
    tagsDeleted: [],
    manifestsDeleted: [],
    layerLinksDeleted: 0,
    blobsDeleted: 0,
    bytesFreed: 0,
    uploadsPurged: 0,
    repositoriesDeleted: [],
    blobsKept: 0,
    bytesKept: 0,
  };
}

export class GarbageCollector {
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * The collection's re-checks and deletes under the maintenance lock, one at a time although
   * repositories and blobs are checked several at once, so that pushes get the lock between two.
   */
  private readonly exclusive: <T>(work: () => Promise<T>) => Promise<T>;

  constructor(private readonly registry: Registry) {
    this.exclusive = exclusiveInTurn(registry.maintenance);
  }

  /** Runs a collection once the one in progress (if any) has finished: one at a time. */
  run(options: GcOptions, onStart?: () => void): Promise<GcReport> {
    const run = this.queue.then(() => {
      onStart?.();
      return this.collect(options);
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async collect(options: GcOptions): Promise<GcReport> {
    const started = Date.now();
    // The cutoff is taken under the maintenance lock: every push that began publishing before it
    // has finished (so the mark sees its manifest and tags), and every one after it refreshes
    // what it references later than the cutoff. File systems stamp new files with a coarse clock
    // (a few ms behind), hence the margin.
    const cutoff = (await this.registry.maintenance.exclusive(async () => Date.now())) - options.gracePeriodMs - COARSE_CLOCK_MARGIN_MS;
    const report = emptyReport(options.dryRun === true);
    const live = new Set<string>();
    const repos = options.repositories ?? (await this.registry.catalog.allRepositoryDirectories());
    report.repositories = repos.length;
    await forEachConcurrently(repos, REPOSITORY_CONCURRENCY, (repo) => this.collectRepository(repo, options, cutoff, started, live, report));
    // Repositories run several at once: what they deleted is listed sorted, the same from run to run.
    for (const list of [report.tagsDeleted, report.manifestsDeleted, report.repositoriesDeleted]) list.sort();
    if (!options.repositories) await this.sweepBlobs(live, cutoff, report);
    report.durationMs = Date.now() - started;
    return report;
  }

  private async collectRepository(repo: string, options: GcOptions, cutoff: number, now: number, live: Set<string>, report: GcReport): Promise<void> {
    const { manifests, tags, driver } = this.registry;
    const dryRun = options.dryRun === true;

    // Retention first: the tags it drops stop keeping their manifests alive below.
    let entries = await tags.entries(repo);
    const policy = options.retention ? policyFor(repo, options.retention) : undefined;
    let expire = new Set<string>();
    if (policy) {
      expire = new Set(tagsToExpire(entries.map((e) => ({ tag: e.tag, pushedAt: e.modTime.getTime() })), policy, now));
      for (const e of entries.filter((x) => expire.has(x.tag))) {
        const removed = dryRun || (await this.exclusive(async () => (await tags.get(repo, e.tag))?.equals(e.digest) === true && tags.delete(repo, e.tag)));
        if (removed) report.tagsDeleted.push(`${repo}:${e.tag}`);
      }
      entries = entries.filter((x) => !expire.has(x.tag));
    }

    // Mark the manifests to keep.
    const revisions = await manifests.revisions(repo);
    const parsed = new Map<string, ParsedManifest | undefined>();
    const referrersOf = new Map<string, string[]>();
    const keep = new Set<string>();
    const queue: string[] = [];
    const mark = (d: string) => {
      if (!keep.has(d) && parsed.has(d)) {
        keep.add(d);
        queue.push(d);
      }
    };
    await forEachConcurrently(revisions, WALK_CONCURRENCY, async (d) => {
      const m = await manifests.parsed(repo, d);
      parsed.set(d.toString(), m);
      if (m?.subject) referrersOf.set(m.subject.digest, [...(referrersOf.get(m.subject.digest) ?? []), d.toString()]);
    });
    for (const e of entries) mark(e.digest.toString());
    await forEachConcurrently(revisions, WALK_CONCURRENCY, async (d) => {
      const t = await manifests.lastReferenced(repo, d);
      if (!options.deleteUntagged || (t !== undefined && t >= cutoff)) mark(d.toString());
    });
    for (let d = queue.pop(); d !== undefined; d = queue.pop()) {
      for (const child of parsed.get(d)?.manifests ?? []) mark(child.digest);
      for (const referrer of referrersOf.get(d) ?? []) mark(referrer);
    }

    // Sweep the others, re-checked under the lock: a tag or reference made since the mark wins.
    const dead = revisions.filter((d) => !keep.has(d.toString()));
    if (dead.length > 0) {
      await this.exclusive(async () => {
        // A dry run did not delete the tags retention drops: do as if it had.
        const current = (await tags.entries(repo)).filter((e) => !(dryRun && expire.has(e.tag)));
        const tagged = new Set(current.map((e) => e.digest.toString()));
        for (const d of dead) {
          const t = await manifests.lastReferenced(repo, d);
          if (t === undefined || t >= cutoff || tagged.has(d.toString())) {
            keep.add(d.toString());
            continue;
          }
          if (!dryRun) await manifests.removeRevision(repo, d, parsed.get(d.toString()));
          report.manifestsDeleted.push(`${repo}@${d.toString()}`);
        }
        if (!dryRun) await manifests.dropIfEmpty(repo);
      });
    }

    // Blobs the kept manifests use.
    const used = new Set<string>();
    for (const d of keep) {
      used.add(d);
      const m = parsed.get(d);
      if (m?.config) used.add(m.config.digest);
      for (const l of m?.layers ?? []) used.add(l.digest);
    }
    used.forEach((d) => live.add(d));

    // Layer links nothing uses any more (young ones may belong to a push in progress).
    for (const digest of await listDigestDirectories(driver, paths.layersRoot(repo))) {
      if (used.has(digest.toString())) continue;
      const removed = await this.exclusive(async () => {
        const t = (await ifExists(driver.stat(paths.layerLink(repo, digest))))?.modTime.getTime();
        if (t === undefined || t >= cutoff) return false;
        if (!dryRun) await this.registry.blobs.unlink(repo, digest);
        return true;
      });
      if (removed) report.layerLinksDeleted++;
      else live.add(digest.toString());
    }

    if (options.uploadMaxAgeMs !== undefined) await this.purgeUploads(repo, now - options.uploadMaxAgeMs, dryRun, report);
    if (!dryRun && (await this.removeIfEmpty(repo))) report.repositoriesDeleted.push(repo);
  }

  /** Removes upload sessions idle since before `before` in every repository; answers how many. */
  async purgeAllUploads(before: number, dryRun = false): Promise<number> {
    const report = emptyReport(dryRun);
    for (const repo of await this.registry.catalog.allRepositoryDirectories()) await this.purgeUploads(repo, before, dryRun, report);
    return report.uploadsPurged;
  }

  private async purgeUploads(repo: string, before: number, dryRun: boolean, report: GcReport): Promise<void> {
    const { driver } = this.registry;
    for (const id of (await ifExists(driver.list(paths.uploadsRoot(repo)))) ?? []) {
      const info = await uploadInfo(driver, repo, id);
      const t = info?.modTime.getTime();
      if (t === undefined || t >= before) continue;
      if (!dryRun) await driver.delete(paths.uploadData(repo, id)).catch(() => undefined);
      report.uploadsPurged++;
    }
  }

  /** Removes a repository left with nothing, and parent directories it leaves empty. */
  private async removeIfEmpty(repo: string): Promise<boolean> {
    const { driver } = this.registry;
    return this.exclusive(async () => {
      const children = (await ifExists(driver.list(paths.repo(repo)))) ?? [];
      for (const child of children) {
        if (!child.startsWith("_")) return false;
        if (!(await this.isEmptyTree(`${paths.repo(repo)}/${child}`))) return false;
      }
      await driver.delete(paths.repo(repo)).catch(() => undefined);
      for (let parent = repo.slice(0, repo.lastIndexOf("/")); parent.length > 0; parent = parent.slice(0, Math.max(parent.lastIndexOf("/"), 0))) {
        if (((await ifExists(driver.list(paths.repo(parent)))) ?? []).length > 0) break;
        await driver.delete(paths.repo(parent)).catch(() => undefined);
      }
      return true;
    });
  }

  /** True when a directory holds no files at any depth. */
  private async isEmptyTree(path: string): Promise<boolean> {
    const { driver } = this.registry;
    const info = await ifExists(driver.stat(path));
    if (!info) return true;
    if (!info.isDir) return false;
    for (const child of (await ifExists(driver.list(path))) ?? []) {
      if (!(await this.isEmptyTree(`${path}/${child}`))) return false;
    }
    return true;
  }

  private async sweepBlobs(live: Set<string>, cutoff: number, report: GcReport): Promise<void> {
    const { driver, blobs } = this.registry;
    const dryRun = report.dryRun;
    for (const alg of (await ifExists(driver.list(paths.blobsRoot))) ?? []) {
      for (const prefix of (await ifExists(driver.list(`${paths.blobsRoot}/${alg}`))) ?? []) {
        const hexes = (await ifExists(driver.list(`${paths.blobsRoot}/${alg}/${prefix}`))) ?? [];
        await forEachConcurrently(hexes, WALK_CONCURRENCY, async (hex) => {
          const digest = Digest.tryParse(`${alg}:${hex}`);
          if (!digest) return;
          if (live.has(digest.toString())) {
            // Read before adding: `total += await size` would add to the total as it was before the wait.
            const size = (await blobs.size(digest)) ?? 0;
            report.blobsKept++;
            report.bytesKept += size;
            return;
          }
          let size = 0;
          const deleted = await this.exclusive(async () => {
            const info = await ifExists(driver.stat(paths.blobData(digest)));
            size = info?.size ?? 0;
            if (info && info.modTime.getTime() >= cutoff) return false;
            if (!dryRun) await blobs.delete(digest);
            return true;
          });
          if (deleted) {
            report.blobsDeleted++;
            report.bytesFreed += size;
          } else {
            report.blobsKept++;
            report.bytesKept += size;
          }
        });
      }
    }
  }
}

