// The referrers index: for each subject digest, one small file per manifest that names it as
// its subject, holding the descriptor the referrers API answers with (no manifest is parsed
// at list time).
import { Digest } from "../reference";
import { ifExists, PublishStep, StorageDriver } from "../storage/driver";
import { paths } from "../storage/paths";
import type { Descriptor } from "./manifest";

export class ReferrerIndex {
  constructor(private readonly driver: StorageDriver) {}

  /** The entry that lists `referrer` among the referrers of `subject`. */
  addStep(repo: string, subject: Digest, referrer: Digest, descriptor: Descriptor): PublishStep {
    return { path: paths.referrerEntry(repo, subject, referrer), content: JSON.stringify(descriptor) };
  }

  async remove(repo: string, subject: Digest, referrer: Digest): Promise<void> {
    await ifExists(this.driver.delete(paths.referrerEntry(repo, subject, referrer)));
  }

  /** Descriptors of the manifests whose subject is `subject`, ordered by digest. */
  async list(repo: string, subject: Digest): Promise<Descriptor[]> {
    const listed = await ifExists(this.driver.list(paths.referrersOf(repo, subject)));
    if (!listed) return [];
    const names = listed.filter((n) => n.endsWith(".json")).sort();
    const out: Descriptor[] = [];
    for (const name of names) {
      const content = await ifExists(this.driver.getContent(`${paths.referrersOf(repo, subject)}/${name}`));
      if (content) out.push(JSON.parse(content.toString("utf8")) as Descriptor);
    }
    return out;
  }
}
