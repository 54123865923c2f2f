// An A/B of two builds of our server, or of one build under two settings, on one phase:
// interleaved rounds on fresh stores, so that the machine's drift hits both sides. The changes
// of issue 4 were each measured this way. On these VMs a store can land in a block group full of
// recently deleted inodes and run small requests at half speed: run again with the sides
// exchanged before believing a difference.
//
//   node dist/bench/ab.js --phase put [--rounds 6] [--a DIR] [--b DIR] [--env-b K=V,K=V]
//                         [--flags-b "--max-semi-space-size=2"]
// DIR is a registry-server directory with a build (dist/src/main.js); both default to this one.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pool } from "./client";
import { BigBlob, makeImage, payload, prepareBlob, SmallImage } from "./payload";
import { cpuSeconds } from "./proc";
import { OUR_NODE_FLAGS, ServerHandle, startOurs } from "./servers";

const MiB = 1 << 20;
const BIG = 256 * MiB;
const SMALL_IMAGES = 500;
const CONCURRENCY = 32;

interface Side {
  name: string;
  dir: string;
  flags: string[];
  env: Record<string, string>;
}

/** A phase: untimed preparation, then the timed work; answers the units done (bytes or requests). */
type Phase = (s: ServerHandle, id: string) => Promise<{ units: number; bytes: boolean; run: () => Promise<unknown> }>;

async function smallImages(s: ServerHandle, id: string): Promise<{ repo: string; images: SmallImage[] }> {
  const repo = `ab/${id}`;
  const images = Array.from({ length: SMALL_IMAGES }, (_, i) => makeImage(`${id}-${i}`, 1024));
  await pool(images.length, CONCURRENCY, (i) => s.client.pushImageBlobs(repo, images[i]));
  return { repo, images };
}

const push = (s: ServerHandle, b: BigBlob) => s.client.pushBlob("ab/big", b.digest, payload(b.id, 0, b.size), b.size);

const PHASES: Record<string, Phase> = {
  async mono(s, id) {
    const b = prepareBlob(id, BIG);
    return { units: BIG, bytes: true, run: () => push(s, b) };
  },
  async chunked(s, id) {
    const b = prepareBlob(id, BIG);
    return { units: BIG, bytes: true, run: () => s.client.pushChunked("ab/big", b, 16 * MiB) };
  },
  async parallel(s, id) {
    const blobs = Array.from({ length: 8 }, (_, i) => prepareBlob(`${id}-${i}`, BIG / 8));
    return { units: BIG, bytes: true, run: () => Promise.all(blobs.map((b) => push(s, b))) };
  },
  async pull(s, id) {
    const b = prepareBlob(id, BIG);
    await push(s, b);
    return { units: BIG, bytes: true, run: () => s.client.pullBlob("ab/big", b.digest, b.size) };
  },
  async blobs(s, id) {
    const repo = `ab/${id}`;
    const images = Array.from({ length: SMALL_IMAGES }, (_, i) => makeImage(`${id}-${i}`, 1024));
    const blob = (j: number): [Buffer, string] => (j % 2 ? [images[j >> 1].config, images[j >> 1].configDigest] : [images[j >> 1].layer, images[j >> 1].layerDigest]);
    return {
      units: 2 * images.length,
      bytes: false,
      run: () => pool(2 * images.length, CONCURRENCY, (j) => s.client.pushBlob(repo, blob(j)[1], blob(j)[0], blob(j)[0].length)),
    };
  },
  async put(s, id) {
    const { repo, images } = await smallImages(s, id);
    return { units: images.length, bytes: false, run: () => pool(images.length, CONCURRENCY, (i) => s.client.putManifest(repo, `t${i}`, images[i].manifest)) };
  },
  async get(s, id) {
    const { repo, images } = await smallImages(s, id);
    await pool(images.length, CONCURRENCY, (i) => s.client.putManifest(repo, `t${i}`, images[i].manifest));
    const n = 4 * images.length;
    const fetch = (i: number) => s.client.fetchManifest("GET", repo, `t${i % images.length}`, images[i % images.length].manifestDigest);
    return { units: n, bytes: false, run: () => pool(n, CONCURRENCY, fetch) };
  },
};

function parseArgs(argv: string[]): { phase: string; rounds: number; sides: [Side, Side] } {
  const here = path.resolve(__dirname, "../..");
  const opts: Record<string, string> = {};
  const known = ["phase", "rounds", "a", "b", "env-a", "env-b", "flags-a", "flags-b"];
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (!flag.startsWith("--") || !known.includes(flag.slice(2)) || i + 1 >= argv.length) throw new Error(`unknown argument or missing value: ${flag}`);
    opts[flag.slice(2)] = argv[++i];
  }
  const phase = opts.phase ?? "";
  if (!PHASES[phase]) throw new Error(`--phase must be one of ${Object.keys(PHASES).join(", ")}`);
  const rounds = Number(opts.rounds ?? 6);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error("--rounds must be a positive integer");
  const env = (v: string | undefined) => Object.fromEntries((v ?? "").split(",").filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  const side = (k: "a" | "b"): Side => ({
    name: k.toUpperCase(),
    dir: path.resolve(opts[k] ?? here),
    flags: opts[`flags-${k}`]?.split(" ").filter(Boolean) ?? OUR_NODE_FLAGS,
    env: env(opts[`env-${k}`]),
  });
  return { phase, rounds, sides: [side("a"), side("b")] };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function main(): Promise<void> {
  const { phase, rounds, sides } = parseArgs(process.argv.slice(2));
  const base = fs.mkdtempSync(path.join(os.tmpdir(), "registry-ab-"));
  try {
    execFileSync("chattr", ["+T", base], { stdio: "ignore" });
  } catch {
    // Not ext2/3/4: the stores share a directory.
  }
  const servers: ServerHandle[] = [];
  try {
    for (const [i, s] of sides.entries()) {
      const root = path.join(base, s.name);
      fs.mkdirSync(root);
      servers.push(await startOurs(root, path.join(s.dir, "dist/src/main.js"), s.flags, s.env));
      console.log(`${s.name}: ${s.dir} ${s.flags.join(" ")} ${Object.entries(s.env).map(([k, v]) => `${k}=${v}`).join(" ")} (pid ${servers[i].pid})`);
    }
    const results: { rate: number; cpu: number }[][] = [[], []];
    let unit = "";
    for (let r = 0; r < rounds; r++) {
      for (const i of r % 2 ? [1, 0] : [0, 1]) {
        const server = servers[i];
        const work = await PHASES[phase](server, `r${r}${sides[i].name.toLowerCase()}${Date.now()}`);
        const cpu0 = cpuSeconds(server.pid);
        const t0 = performance.now();
        await work.run();
        const seconds = (performance.now() - t0) / 1000;
        const cpu = cpuSeconds(server.pid) - cpu0;
        unit = work.bytes ? "MB/s, CPU s/GiB" : "/s, CPU ms/request";
        results[i].push(work.bytes ? { rate: work.units / 1e6 / seconds, cpu: cpu / (work.units / 2 ** 30) } : { rate: work.units / seconds, cpu: (cpu * 1000) / work.units });
      }
    }
    console.log(`${phase}, ${rounds} interleaved rounds (${unit}): median [each round]`);
    for (const [i, s] of sides.entries()) {
      const rates = results[i].map((x) => x.rate);
      const cpus = results[i].map((x) => x.cpu);
      console.log(`  ${s.name}: ${median(rates).toFixed(0)} [${rates.map((x) => x.toFixed(0)).join(" ")}]  CPU ${median(cpus).toFixed(3)} [${cpus.map((x) => x.toFixed(2)).join(" ")}]`);
    }
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    fs.rmSync(base, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(`ab: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
