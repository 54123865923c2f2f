// Tags: one link file per tag holding the digest it points at.
import { Digest } from "../reference";
import { exists, ifExists, PublishStep, StorageDriver } from "../storage/driver";
import { paths } from "../storage/paths";
import { mapConcurrently, WALK_CONCURRENCY } from "../util/concurrently";

/** Repositories whose sorted tag list is kept in memory. */
const LIST_CACHE_REPOS = 256;
/**
 * Tag links whose digest is remembered: about 440 bytes of heap each (the link's path, its
 * version, the digest), so 0.9 MiB when full. A miss costs a small read besides the stat.
 */
const LINK_CACHE_TAGS = 2048;
/** A directory changed this recently could change again within the same clock tick unseen. */
const SETTLE_MS = 1000;

export class TagStore {
  /**
   * Sorted tag lists, valid while the tags directory's modification time is unchanged (and
   * settled), so a page of tags/list costs a stat, not a listing of every tag (issue: listing
   * scales with the page). Shared by every process: each checks the directory itself.
   */
  private readonly listCache = new Map<string, { modTime: number; tags: string[] }>();
  /**
   * What tag links held, by link path, with the version of the link they were read at: a GET by
   * tag then costs a stat of the link instead of an open, a read and a close (every process
   * checks the link itself, so a tag moved by another one is seen at once).
   */
  private readonly linkCache = new Map<string, { version: string; digest: Digest }>();

  constructor(private readonly driver: StorageDriver) {}

  async get(repo: string, tag: string): Promise<Digest | undefined> {
    const link = paths.tagLink(repo, tag);
    const info = await ifExists(this.driver.stat(link));
    const cached = this.linkCache.get(link);
    if (!info) {
      this.linkCache.delete(link);
      return undefined;
    }
    if (cached && info.version !== undefined && cached.version === info.version) return cached.digest;
    const content = await ifExists(this.driver.getContent(link));
    const digest = content && Digest.tryParse(content.toString("utf8").trim());
    this.linkCache.delete(link);
    if (!digest) return undefined;
    // Keyed by what the stat saw: a change between the stat and the read is seen at the next stat.
    if (info.version !== undefined) {
      this.linkCache.set(link, { version: info.version, digest });
      if (this.linkCache.size > LINK_CACHE_TAGS) this.linkCache.delete(this.linkCache.keys().next().value as string);
    }
    return digest;
  }

  /** The digest the tag pointed at when last read, without any I/O (a guess to check, not an answer). */
  peek(repo: string, tag: string): Digest | undefined {
    return this.linkCache.get(paths.tagLink(repo, tag))?.digest;
  }

  /** What setting the tag writes (nothing when it already points there: it is only refreshed). */
  async setSteps(repo: string, tag: string, digest: Digest): Promise<PublishStep[]> {
    const current = await this.get(repo, tag);
    // Pushing a tag again counts as a push for retention ("keep the N most recent").
    if (current?.equals(digest) && (await exists(this.driver.touch(paths.tagLink(repo, tag))))) return [];
    return [{ path: paths.tagLink(repo, tag), content: digest.toString() }];
  }

  async delete(repo: string, tag: string): Promise<boolean> {
    return exists(this.driver.delete(paths.tagDir(repo, tag)));
  }

  /** All tags in lexical order (do not modify the array); undefined when the repository has no tag directory. */
  async list(repo: string): Promise<string[] | undefined> {
    const info = await ifExists(this.driver.stat(paths.tagsRoot(repo)));
    if (!info) {
      this.listCache.delete(repo);
      return undefined;
    }
    const modTime = info.modTime.getTime();
    const hit = this.listCache.get(repo);
    if (hit && hit.modTime === modTime && Date.now() - modTime > SETTLE_MS) return hit.tags;
    const tags = (await ifExists(this.driver.list(paths.tagsRoot(repo))))?.sort();
    this.listCache.delete(repo);
    if (!tags) return undefined;
    this.listCache.set(repo, { modTime, tags });
    if (this.listCache.size > LIST_CACHE_REPOS) {
      const oldest = this.listCache.keys().next().value;
      if (oldest !== undefined) this.listCache.delete(oldest);
    }
    return tags;
  }

  /** Tags with their digests, for deletes and retention. */
  async entries(repo: string): Promise<{ tag: string; digest: Digest; modTime: Date }[]> {
    const found = await mapConcurrently((await this.list(repo)) ?? [], WALK_CONCURRENCY, async (tag) => {
      const read = await ifExists(Promise.all([this.driver.getContent(paths.tagLink(repo, tag)), this.driver.stat(paths.tagLink(repo, tag))]));
      const digest = read && Digest.tryParse(read[0].toString("utf8").trim());
      return read && digest ? { tag, digest, modTime: read[1].modTime } : undefined;
    });
    return found.filter((e) => e !== undefined);
  }
}
