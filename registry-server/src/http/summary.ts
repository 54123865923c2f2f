// GET /_registry/summary: what each repository holds and what the store and its volume hold,
// for the web UI. Computed per request from listings, manifests and stats; layer content is
// never read (sizes come from the manifests' descriptors).
import { repositoryContents } from "../registry/usage";
import type { Registry } from "../registry/registry";
import type { Digest } from "../reference";
import { Handler, sendJson } from "./context";

export interface RepositorySummary {
  name: string;
  tags: number;
  manifests: number;
  /** Bytes of the distinct blobs (manifests, configs, layers) its manifests reference. */
  bytes: number;
}

export interface StorageSummary {
  repositories: RepositorySummary[];
  /** blobs and bytes: the whole store, each blob once (shared and unreferenced ones included). */
  totals: { repositories: number; tags: number; manifests: number; blobs: number; bytes: number };
  volume: { freeBytes: number | null; quotaBytes: number | null };
}

/** Sum of the distinct blobs the manifests reference: each manifest itself, its config and layers. */
async function referencedBytes(registry: Registry, repo: string, manifests: Digest[]): Promise<number> {
  const sizes = new Map<string, number>();
  for (const digest of manifests) {
    sizes.set(digest.toString(), (await registry.blobs.size(digest)) ?? 0);
    const parsed = await registry.manifests.parsed(repo, digest);
    for (const d of [...(parsed?.config ? [parsed.config] : []), ...(parsed?.layers ?? [])]) {
      if (!sizes.has(d.digest)) sizes.set(d.digest, d.size);
    }
  }
  let total = 0;
  for (const size of sizes.values()) total += size;
  return total;
}

export const getStorageSummary: Handler = async (ctx) => {
  const { registry, usage } = ctx;
  const repositories: RepositorySummary[] = [];
  for (const repo of await repositoryContents(registry)) {
    const bytes = await referencedBytes(registry, repo.name, repo.manifests);
    repositories.push({ name: repo.name, tags: repo.tags.length, manifests: repo.manifests.length, bytes });
  }
  await usage.refresh();
  const stored = usage.totals();
  const summary: StorageSummary = {
    repositories,
    totals: {
      repositories: repositories.length,
      tags: repositories.reduce((n, r) => n + r.tags, 0),
      manifests: repositories.reduce((n, r) => n + r.manifests, 0),
      blobs: stored.blobs,
      bytes: stored.bytes,
    },
    volume: { freeBytes: (await usage.freeBytes()) ?? null, quotaBytes: usage.limits.quotaBytes ?? null },
  };
  sendJson(ctx.res, 200, summary);
};
