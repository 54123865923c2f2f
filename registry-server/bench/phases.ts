// The measured phases. Each runs against one server and answers its metrics for the round; what
// a phase needs beforehand (digests of the payloads, the catalog's repositories, the 500 tags) is
// prepared outside the timed part.
import { performance } from "node:perf_hooks";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { pool, RegistryClient } from "./client";
import type { PhaseName, Sizes } from "./options";
import { BigBlob, makeImage, payload, prepareBlob } from "./payload";
import { cpuSeconds, statusMiB } from "./proc";
import type { MetricKey } from "./report";
import type { ServerHandle } from "./servers";

const GiB = 1 << 30;

export type PhaseValues = Partial<Record<MetricKey, number>>;

/** What the bench remembers about one server between phases and rounds. */
export interface ServerState {
  server: ServerHandle;
  /** The last big blob pushed (pulled by the pull phase). */
  lastPushed?: { repo: string; blob: BigBlob };
  /** Big blobs of this round, removed from the store when the round ends. */
  roundBlobs: string[];
  catalogRepos?: number;
  tagsReady: boolean;
  /** Notes for the report, by subject (e.g. how many repositories the catalog walk saw). */
  notes: Map<string, string>;
  /** Repositories each catalog walk listed, per round. */
  catalogListed: number[];
}

export interface PhaseContext {
  state: ServerState;
  round: number;
  sizes: Sizes;
  /** Unique per bench run, so that blobs never repeat across runs. */
  nonce: string;
}

interface Timed {
  seconds: number;
  cpu: number;
}

async function timed(pid: number, fn: () => Promise<unknown>): Promise<Timed> {
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  await fn();
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, cpu: cpuSeconds(pid) - cpu0 };
}

function uid(ctx: PhaseContext, what: string): string {
  return `${ctx.nonce}/${ctx.state.server.kind}/round${ctx.round}/${what}`;
}

function bigBlobValues(mbps: MetricKey, cpu: MetricKey, bytes: number, t: Timed): PhaseValues {
  return { [mbps]: bytes / 1e6 / t.seconds, [cpu]: t.cpu / (bytes / GiB) };
}

function requestValues(rate: MetricKey, cpu: MetricKey, items: number, requests: number, t: Timed): PhaseValues {
  return { [rate]: items / t.seconds, [cpu]: (t.cpu * 1000) / requests };
}

async function mono(ctx: PhaseContext): Promise<PhaseValues> {
  const { server } = ctx.state;
  const blob = prepareBlob(uid(ctx, "mono"), ctx.sizes.monoBytes);
  const repo = "big/mono";
  const t = await timed(server.pid, () => server.client.pushBlob(repo, blob.digest, payload(blob.id, 0, blob.size), blob.size));
  ctx.state.roundBlobs.push(blob.digest);
  ctx.state.lastPushed = { repo, blob };
  return bigBlobValues("mono.mbps", "mono.cpu", blob.size, t);
}

async function chunked(ctx: PhaseContext): Promise<PhaseValues> {
  const { server } = ctx.state;
  const blob = prepareBlob(uid(ctx, "chunked"), ctx.sizes.chunkedBytes);
  const t = await timed(server.pid, () => server.client.pushChunked("big/chunked", blob, ctx.sizes.chunkBytes));
  ctx.state.roundBlobs.push(blob.digest);
  return bigBlobValues("chunked.mbps", "chunked.cpu", blob.size, t);
}

async function pull(ctx: PhaseContext): Promise<PhaseValues> {
  const { server } = ctx.state;
  let pushed = ctx.state.lastPushed;
  if (!pushed) {
    // The mono phase did not run this round: push the blob to pull, untimed.
    const blob = prepareBlob(uid(ctx, "pull"), ctx.sizes.monoBytes);
    pushed = { repo: "big/pull", blob };
    await server.client.pushBlob(pushed.repo, blob.digest, payload(blob.id, 0, blob.size), blob.size);
    ctx.state.roundBlobs.push(blob.digest);
    ctx.state.lastPushed = pushed;
  }
  const { repo, blob } = pushed;
  const t = await timed(server.pid, () => server.client.pullBlob(repo, blob.digest, blob.size));
  return bigBlobValues("pull.mbps", "pull.cpu", blob.size, t);
}

async function parallel(ctx: PhaseContext): Promise<PhaseValues> {
  const { server } = ctx.state;
  const blobs = Array.from({ length: ctx.sizes.parallelCount }, (_, i) => prepareBlob(uid(ctx, `parallel${i}`), ctx.sizes.parallelBytes));
  const t = await timed(server.pid, () =>
    Promise.all(blobs.map((b) => server.client.pushBlob("big/parallel", b.digest, payload(b.id, 0, b.size), b.size))),
  );
  ctx.state.roundBlobs.push(...blobs.map((b) => b.digest));
  return bigBlobValues("parallel.mbps", "parallel.cpu", blobs.length * ctx.sizes.parallelBytes, t);
}

async function small(ctx: PhaseContext): Promise<PhaseValues> {
  const { server } = ctx.state;
  const { client } = server;
  const { smallImages: n, concurrency } = ctx.sizes;
  const repo = `small/round${ctx.round}`;
  const images = Array.from({ length: n }, (_, i) => makeImage(uid(ctx, `small${i}`), ctx.sizes.smallLayerBytes));
  const tag = (i: number) => `t${i}`;

  const uploads = await timed(server.pid, () =>
    pool(2 * n, concurrency, (j) => {
      const image = images[j >> 1];
      const [body, digest] = j % 2 === 0 ? [image.layer, image.layerDigest] : [image.config, image.configDigest];
      return client.pushBlob(repo, digest, body, body.length);
    }),
  );
  const puts = await timed(server.pid, () => pool(n, concurrency, (i) => client.putManifest(repo, tag(i), images[i].manifest)));
  const gets = await timed(server.pid, () => pool(n, concurrency, (i) => client.fetchManifest("GET", repo, tag(i), images[i].manifestDigest)));
  const heads = await timed(server.pid, () => pool(n, concurrency, (i) => client.fetchManifest("HEAD", repo, tag(i), images[i].manifestDigest)));
  return {
    ...requestValues("small.blobs", "small.blobs.cpu", 2 * n, 4 * n, uploads),
    ...requestValues("small.put", "small.put.cpu", n, n, puts),
    ...requestValues("small.get", "small.get.cpu", n, n, gets),
    ...requestValues("small.head", "small.head.cpu", n, n, heads),
  };
}

/** Untimed: catalogRepos repositories, each with one image (its blobs mounted from a base repo). */
async function prepareCatalog(ctx: PhaseContext): Promise<void> {
  const { client } = ctx.state.server;
  const base = "catalog/base";
  const image = makeImage(uid(ctx, "catalog"), ctx.sizes.smallLayerBytes);
  await client.pushImageBlobs(base, image);
  await client.putManifest(base, "latest", image.manifest);
  await pool(ctx.sizes.catalogRepos, ctx.sizes.concurrency, async (i) => {
    const repo = `catalog/r${String(i).padStart(5, "0")}`;
    await client.mountBlob(repo, image.layerDigest, base, image.layer);
    await client.mountBlob(repo, image.configDigest, base, image.config);
    await client.putManifest(repo, "latest", image.manifest);
  });
  ctx.state.catalogRepos = ctx.sizes.catalogRepos;
}

async function catalog(ctx: PhaseContext): Promise<PhaseValues> {
  const { server } = ctx.state;
  if (ctx.state.catalogRepos === undefined) await prepareCatalog(ctx);
  let pages = 0;
  let listed = 0;
  const t = await timed(server.pid, async () => {
    for (let walk = 0; walk < ctx.sizes.catalogWalks; walk++) {
      listed = 0;
      let next: string | undefined = `/v2/_catalog?n=${ctx.sizes.catalogPageSize}`;
      while (next !== undefined) {
        const page: { body: unknown; next?: string } = await server.client.getListing(next);
        pages++;
        listed += (page.body as { repositories?: unknown[] }).repositories?.length ?? 0;
        next = page.next;
      }
    }
  });
  if (listed < ctx.sizes.catalogRepos) throw new Error(`catalog walk listed ${listed} repositories, expected at least ${ctx.sizes.catalogRepos}`);
  const counts = [...ctx.state.catalogListed, listed];
  ctx.state.catalogListed = counts;
  const [lo, hi] = [Math.min(...counts), Math.max(...counts)];
  ctx.state.notes.set(
    "catalog",
    `catalog walks listed ${lo === hi ? lo : `${lo}–${hi}`} repositories in ${pages / ctx.sizes.catalogWalks} pages; ` +
      "the small phase adds a repository each round, so each round's first walk follows a change " +
      "(distribution also lists repositories that hold only blobs)",
  );
  return { "catalog.seconds": t.seconds / ctx.sizes.catalogWalks, "catalog.cpu": (t.cpu * 1000) / pages };
}

async function tags(ctx: PhaseContext): Promise<PhaseValues> {
  const { server } = ctx.state;
  const { client } = server;
  const repo = "tags/app";
  const { tagCount, tagRequests, concurrency } = ctx.sizes;
  if (!ctx.state.tagsReady) {
    const image = makeImage(uid(ctx, "tags"), ctx.sizes.smallLayerBytes);
    await client.pushImageBlobs(repo, image);
    await pool(tagCount, concurrency, (i) => client.putManifest(repo, `v${String(i).padStart(4, "0")}`, image.manifest));
    ctx.state.tagsReady = true;
  }
  const t = await timed(server.pid, () =>
    pool(tagRequests, concurrency, async () => {
      const { body } = await client.getListing(`/v2/${repo}/tags/list`);
      const count = (body as { tags?: unknown[] }).tags?.length ?? 0;
      if (count !== tagCount) throw new Error(`tags/list answered ${count} tags, expected ${tagCount}`);
    }),
  );
  return requestValues("tags.rps", "tags.cpu", tagRequests, tagRequests, t);
}

/**
 * Many clients at once (run once, after the rounds: what it leaves resident would skew their
 * memory figures): crowdClients connections each push a blob of crowdBytes, then all pull them
 * back, verified. Its figure is the server's peak RSS meanwhile (sampled every 20 ms): memory
 * must stay bounded however many transfers run at once.
 */
async function crowd(ctx: PhaseContext): Promise<PhaseValues> {
  const { server } = ctx.state;
  const { crowdClients: n, crowdBytes } = ctx.sizes;
  const blobs = Array.from({ length: n }, (_, i) => prepareBlob(uid(ctx, `crowd${i}`), crowdBytes));
  const client = new RegistryClient(server.client.host, server.client.port, n);
  let peak = 0;
  const sample = () => (peak = Math.max(peak, statusMiB(server.pid, "VmRSS") ?? 0));
  sample();
  const sampler = setInterval(sample, 20);
  try {
    const pushes = await timed(server.pid, () => Promise.all(blobs.map((b) => client.pushBlob("crowd/r", b.digest, payload(b.id, 0, b.size), b.size))));
    ctx.state.roundBlobs.push(...blobs.map((b) => b.digest));
    const pulls = await timed(server.pid, () => Promise.all(blobs.map((b) => client.pullBlob("crowd/r", b.digest, b.size))));
    sample();
    const bytes = n * crowdBytes;
    return { "crowd.rss": peak, "crowd.push.mbps": bytes / 1e6 / pushes.seconds, "crowd.pull.mbps": bytes / 1e6 / pulls.seconds };
  } finally {
    clearInterval(sampler);
    client.close();
    await dropRoundBlobs(ctx.state);
  }
}

export const PHASE_RUNNERS: Record<PhaseName, (ctx: PhaseContext) => Promise<PhaseValues>> = { mono, chunked, pull, parallel, small, catalog, tags, crowd };

/**
 * End of a round: the round's big blobs are removed from the store directly (as garbage
 * collection would; both servers use distribution's layout), so disk use stays bounded.
 */
export async function dropRoundBlobs(state: ServerState): Promise<void> {
  for (const digest of state.roundBlobs) {
    const hex = digest.replace(/^sha256:/, "");
    await fs.rm(path.join(state.server.root, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex), { recursive: true, force: true });
  }
  state.roundBlobs = [];
  state.lastPushed = undefined;
}
