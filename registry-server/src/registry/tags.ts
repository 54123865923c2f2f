// Tags: one link file per tag holding the digest it points at.
import { Digest } from "../reference";
import { exists, ifExists, PublishStep, StorageDriver } from "../storage/driver";
import { paths } from "../storage/paths";

export class TagStore {
  constructor(private readonly driver: StorageDriver) {}

  async get(repo: string, tag: string): Promise<Digest | undefined> {
    const content = await ifExists(this.driver.getContent(paths.tagLink(repo, tag)));
    if (!content) return undefined;
    return Digest.tryParse(content.toString("utf8").trim());
  }

  async set(repo: string, tag: string, digest: Digest): Promise<void> {
    await this.driver.publish(await this.setSteps(repo, tag, digest));
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

  /** All tags in lexical order; undefined when the repository has no tag directory. */
  async list(repo: string): Promise<string[] | undefined> {
    return (await ifExists(this.driver.list(paths.tagsRoot(repo))))?.sort();
  }

  /** Tags with their digests, for deletes and retention. */
  async entries(repo: string): Promise<{ tag: string; digest: Digest; modTime: Date }[]> {
    const out: { tag: string; digest: Digest; modTime: Date }[] = [];
    for (const tag of (await this.list(repo)) ?? []) {
      const found = await ifExists(Promise.all([this.driver.getContent(paths.tagLink(repo, tag)), this.driver.stat(paths.tagLink(repo, tag))]));
      if (!found) continue;
      const [content, info] = found;
      const digest = Digest.tryParse(content.toString("utf8").trim());
      if (digest) out.push({ tag, digest, modTime: info.modTime });
    }
    return out;
  }
}
