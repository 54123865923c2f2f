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

  /**
   * Descriptors of the manifests whose subject is `subject`, ordered by digest: those after the
   * digest `after`, for which `keep` holds, at most `limit` of them; `more` tells if any remain.
   * Entries are read only as far as the page needs.
   */
  async list(
    repo: string,
    subject: Digest,
    page: { after?: string; limit: number; keep?: (d: Descriptor) => boolean },
  ): Promise<{ descriptors: Descriptor[]; more: boolean }> {
    const listed = await ifExists(this.driver.list(paths.referrersOf(repo, subject)));
    // Entry names are "<alg>-<hex>.json": in the same order as the digests they name.
    const after = page.after?.replace(":", "-");
    const names = (listed ?? []).filter((n) => n.endsWith(".json") && (after === undefined || n.slice(0, -5) > after)).sort();
    const descriptors: Descriptor[] = [];
    for (const [i, name] of names.entries()) {
      const content = await ifExists(this.driver.getContent(`${paths.referrersOf(repo, subject)}/${name}`));
      if (!content) continue;
      const d = JSON.parse(content.toString("utf8")) as Descriptor;
      if (page.keep && !page.keep(d)) continue;
      if (descriptors.length === page.limit) return { descriptors, more: i < names.length };
      descriptors.push(d);
    }
    return { descriptors, more: false };
  }
}
