// Retention policies: which tags of a repository to drop. Pure functions; garbage collection
// applies the result and then collects what the dropped tags were keeping alive.
import type { RetentionPolicy } from "../config";

export interface TagAge {
  tag: string;
  /** When the tag was last pushed (ms since the epoch). */
  pushedAt: number;
}

/** `*` matches within one path segment, `**` across segments, `?` one character. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") {
      re += ".*";
      i++;
    } else if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The first policy whose glob matches the repository, if any. */
export function policyFor(repo: string, policies: RetentionPolicy[]): RetentionPolicy | undefined {
  return policies.find((p) => globToRegExp(p.repositories).test(repo));
}

/**
 * Tags the policy drops: every tag that is neither among the `keepLast` most recently pushed
 * nor matching `keepTags`, and (when `olderThan` is set) was pushed longer ago than that.
 */
export function tagsToExpire(tags: TagAge[], policy: RetentionPolicy, now: number): string[] {
  const newestFirst = [...tags].sort((a, b) => b.pushedAt - a.pushedAt || (a.tag < b.tag ? 1 : -1));
  const keepPattern = policy.keepTags !== undefined ? new RegExp(policy.keepTags) : undefined;
  return newestFirst
    .filter((t, i) => {
      if (policy.keepLast !== undefined && i < policy.keepLast) return false;
      if (keepPattern?.test(t.tag)) return false;
      if (policy.olderThanMs !== undefined && now - t.pushedAt <= policy.olderThanMs) return false;
      return true;
    })
    .map((t) => t.tag)
    .sort();
}
