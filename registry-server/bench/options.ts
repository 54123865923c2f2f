// Command-line options and the workload sizes of the quick and full modes.

export type ServerKind = "ours" | "reference";

export const PHASES = ["mono", "chunked", "pull", "parallel", "small", "catalog", "tags", "crowd"] as const;
export type PhaseName = (typeof PHASES)[number];

const MiB = 1 << 20;

export interface Sizes {
  monoBytes: number;
  chunkedBytes: number;
  chunkBytes: number;
  parallelCount: number;
  parallelBytes: number;
  smallImages: number;
  smallLayerBytes: number;
  catalogRepos: number;
  catalogPageSize: number;
  catalogWalks: number;
  tagCount: number;
  tagRequests: number;
  /** Requests in flight in the small-request phases. */
  concurrency: number;
  /** Clients at once in the crowd phase (after the rounds), each pushing and then pulling one blob of crowdBytes. */
  crowdClients: number;
  crowdBytes: number;
}

export const FULL_SIZES: Sizes = {
  monoBytes: 512 * MiB,
  chunkedBytes: 512 * MiB,
  chunkBytes: 16 * MiB,
  parallelCount: 8,
  parallelBytes: 64 * MiB,
  smallImages: 2000,
  smallLayerBytes: 1024,
  catalogRepos: 2000,
  catalogPageSize: 100,
  catalogWalks: 3,
  tagCount: 500,
  tagRequests: 2000,
  concurrency: 32,
  crowdClients: 512,
  crowdBytes: 2 * MiB,
};

export const QUICK_SIZES: Sizes = {
  ...FULL_SIZES,
  monoBytes: 64 * MiB,
  chunkedBytes: 64 * MiB,
  parallelBytes: 8 * MiB,
  smallImages: 100,
  catalogRepos: 200,
  catalogWalks: 2,
  tagCount: 200,
  tagRequests: 300,
  crowdClients: 128,
  crowdBytes: 1 * MiB,
};

export interface Options {
  quick: boolean;
  rounds: number;
  only?: ServerKind;
  json?: string;
  phases: PhaseName[];
  sizes: Sizes;
}

export const USAGE = `usage: node dist/bench/bench.js [--quick] [--rounds N] [--only ours|reference] [--phases ${PHASES.join(",")}] [--json FILE]
  --quick      small sizes and counts, 1 round (under a minute)
  --rounds N   interleaved rounds (default 3; 1 with --quick)
  --only K     run one server only (ratios are then not computed)
  --phases L   comma-separated subset of the phases above
  --json FILE  also write machine-readable results to FILE`;

export class UsageError extends Error {}

export function parseArgs(argv: string[]): Options | "help" {
  let quick = false;
  let rounds: number | undefined;
  let only: ServerKind | undefined;
  let json: string | undefined;
  let phases: PhaseName[] = [...PHASES];
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    switch (arg) {
      case "--help":
      case "-h":
        return "help";
      case "--quick":
        quick = true;
        break;
      case "--rounds":
        rounds = Number(value(i++, arg));
        if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) throw new UsageError("--rounds must be an integer from 1 to 50");
        break;
      case "--only": {
        const v = value(i++, arg);
        if (v !== "ours" && v !== "reference") throw new UsageError("--only must be ours or reference");
        only = v;
        break;
      }
      case "--json":
        json = value(i++, arg);
        break;
      case "--phases": {
        const names = value(i++, arg).split(",").map((s) => s.trim()).filter((s) => s !== "");
        const unknown = names.filter((n) => !(PHASES as readonly string[]).includes(n));
        if (unknown.length > 0 || names.length === 0) throw new UsageError(`unknown phase(s) ${unknown.join(",")}; phases are ${PHASES.join(",")}`);
        phases = PHASES.filter((p) => names.includes(p));
        break;
      }
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  return { quick, rounds: rounds ?? (quick ? 1 : 3), only, json, phases, sizes: quick ? QUICK_SIZES : FULL_SIZES };
}
