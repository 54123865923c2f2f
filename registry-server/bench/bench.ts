// `npm run bench`: our registry against CNCF distribution (docker-registry), each on an empty
// store on loopback, phases interleaved round by round so that the machine's drift hits both.
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { observeDurability, Observation, STATED } from "./durability";
import { Options, parseArgs, PhaseName, PHASES, ServerKind, Sizes, USAGE, UsageError } from "./options";
import { dropRoundBlobs, PHASE_RUNNERS, PhaseContext, ServerState } from "./phases";
import { BackgroundLoad, RssSampler, statusMiB } from "./proc";
import { buildRows, formatTable, METRICS, MetricKey, Series } from "./report";
import { referenceVersion, ServerHandle, startOurs, startReference } from "./servers";

const MiB = 1 << 20;
const execFileAsync = promisify(execFile);

function progress(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

const DISK_PROBE_MIB = 128;

/**
 * The stores' disk as it is now: MB/s of DISK_PROBE_MIB written and fdatasynced. Both servers
 * end every push with fsyncs, so a slow disk narrows the push ratios; this tells such a round.
 */
function probeDisk(dir: string): number {
  const file = path.join(dir, "disk-probe");
  const chunk = randomBytes(MiB);
  const started = performance.now();
  const fd = fs.openSync(file, "w");
  try {
    for (let i = 0; i < DISK_PROBE_MIB; i++) fs.writeSync(fd, chunk);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const mbps = (DISK_PROBE_MIB * MiB) / 1e6 / ((performance.now() - started) / 1000);
  fs.rmSync(file, { force: true });
  return mbps;
}

/** Flushes dirty pages (untimed) so one server's writeback does not land in the other's phase. */
function settle(): void {
  execFileSync("sync");
}

/** /tmp unless it lacks room for a round of both servers; then .bench-tmp beside package.json. */
function chooseTmpBase(sizes: Sizes): { dir: string; note: string } {
  const need = 2 * (sizes.monoBytes + sizes.chunkedBytes + sizes.parallelCount * sizes.parallelBytes) + 2 * 1024 * MiB;
  const tmp = os.tmpdir();
  const st = fs.statfsSync(tmp);
  const free = st.bavail * st.bsize;
  if (free >= need) return { dir: tmp, note: `${tmp} (${(free / 2 ** 30).toFixed(0)} GiB free)` };
  const local = path.resolve(__dirname, "../../.bench-tmp");
  fs.mkdirSync(local, { recursive: true });
  return { dir: local, note: `${local} (${tmp} has only ${(free / 2 ** 30).toFixed(1)} GiB free)` };
}

/**
 * Marks the stores' parent as a top of hierarchy (ext2/3/4 `chattr +T`), so that the file
 * system puts each server's store in its own block group. Otherwise both share one, and on
 * ext4 without a journal (these machines) each new inode is found by skipping every inode of
 * the group deleted in the last minutes: one server's deletions (distribution removes several
 * files per upload) would slow the other's pushes. Answers a note for the report.
 */
function spreadStores(base: string): string {
  try {
    execFileSync("chattr", ["+T", base], { stdio: "ignore" });
    return "each in its own block group (chattr +T)";
  } catch {
    return "in one directory (chattr +T not supported here)";
  }
}

function machineHeader(options: Options, refVersion: string | undefined, tmpNote: string): string[] {
  const cpus = os.cpus();
  const s = options.sizes;
  const mib = (b: number) => `${b / MiB} MiB`;
  return [
    `registry-server benchmark — ${options.quick ? "quick" : "full"} mode, ${options.rounds} round(s), ${new Date().toISOString()}`,
    `machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? "?"}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.type()} ${os.release()}, node ${process.version}`,
    `reference: ${refVersion ?? "not run"}`,
    `stores: ${tmpNote}; client and servers share the machine's cores`,
    `workload: monolithic ${mib(s.monoBytes)}, chunked ${mib(s.chunkedBytes)} in ${mib(s.chunkBytes)} PATCHes, pull ${mib(s.monoBytes)}, ` +
      `${s.parallelCount}×${mib(s.parallelBytes)} parallel, ${s.smallImages} small images (${s.smallLayerBytes} B layer + config + manifest, concurrency ${s.concurrency}), ` +
      `catalog ${s.catalogRepos} repos n=${s.catalogPageSize} ×${s.catalogWalks} walks, tags/list of ${s.tagCount} tags ×${s.tagRequests}; ` +
      `after the rounds, a crowd of ${s.crowdClients} clients at once each pushing then pulling ${mib(s.crowdBytes)}`,
    `phases: ${options.phases.join(", ")}; MB = 10^6 bytes; medians over rounds with [min–max]; ratio = median of the per-round ours/reference ratios`,
  ];
}

interface Run {
  states: ServerState[];
  series: Map<ServerKind, Series>;
  errors: string[];
  /** Average cores used by other processes, per round. */
  background: number[];
  /** The disk's synced write rate at the start of each round (MB/s). */
  disk: number[];
}

function record(series: Series, key: MetricKey, round: number, value: number): void {
  const list = series[key] ?? [];
  while (list.length < round) list.push(NaN);
  list[round] = value;
  series[key] = list;
}

async function runRounds(options: Options, run: Run, sampler: RssSampler, nonce: string): Promise<void> {
  const load = new BackgroundLoad(run.states.map((s) => s.server.pid));
  for (let round = 0; round < options.rounds; round++) {
    run.disk.push(probeDisk(path.dirname(run.states[0].server.root)));
    settle();
    load.mark();
    // Alternate who goes first, so that neither always runs on a warmer (or more tired) machine.
    const order = round % 2 === 0 ? run.states : [...run.states].reverse();
    for (const phase of options.phases.filter((p) => p !== "crowd")) {
      for (const state of order) {
        sampler.label = `round ${round + 1} ${phase}`;
        await runPhase(run, phase, { state, round, sizes: options.sizes, nonce }, round, `round ${round + 1}/${options.rounds}`);
      }
    }
    for (const state of run.states) await dropRoundBlobs(state);
    settle();
    sampler.endRound();
    run.background.push(load.coresSinceMark());
    progress(`round ${round + 1}: other processes used ${run.background[round].toFixed(2)} cores on average; the disk synced ${run.disk[round].toFixed(0)} MB/s at its start`);
  }
}

/**
 * Runs one phase on one server and records its values at index `at` of the server's series; a
 * failure is recorded among the run's errors instead.
 */
async function runPhase(run: Run, phase: PhaseName, ctx: PhaseContext, at: number, label: string): Promise<void> {
  const kind = ctx.state.server.kind;
  try {
    const values = await PHASE_RUNNERS[phase](ctx);
    const series = run.series.get(kind) ?? {};
    for (const [key, value] of Object.entries(values)) record(series, key as MetricKey, at, value);
    run.series.set(kind, series);
    const shown = Object.entries(values)
      .filter(([k]) => !k.endsWith("cpu"))
      .map(([k, v]) => `${k}=${v.toFixed(k.endsWith("seconds") ? 3 : 0)}`)
      .join(" ");
    progress(`${label} ${phase.padEnd(8)} ${kind.padEnd(9)} ${shown}`);
  } catch (err) {
    const message = `${label} ${phase} ${kind}: ${(err as Error).message}`;
    run.errors.push(message);
    progress(`ERROR ${message}`);
  }
  settle();
}

/** The crowd phase, once per server after the rounds (and after the memory figures of the rounds are taken). */
async function runCrowd(options: Options, run: Run, nonce: string): Promise<void> {
  for (const state of run.states) await runPhase(run, "crowd", { state, round: options.rounds, sizes: options.sizes, nonce }, 0, "after the rounds");
}

function memorySeries(run: Run, sampler: RssSampler, hwm: Map<ServerKind, number | undefined>): void {
  for (const state of run.states) {
    const kind = state.server.kind;
    const series = run.series.get(kind) ?? {};
    const peak = sampler.peakOf(kind);
    if (peak !== undefined) series["rss.peak"] = [peak];
    const h = hwm.get(kind);
    if (h !== undefined) series["rss.hwm"] = [h];
    const rounds = sampler.roundPeaksOf(kind);
    if (rounds.length >= 2) series["rss.growth"] = [((rounds[rounds.length - 1] - rounds[0]) / rounds[0]) * 100];
    run.series.set(kind, series);
  }
}

async function main(): Promise<number> {
  let options: Options;
  try {
    const parsed = parseArgs(process.argv.slice(2));
    if (parsed === "help") {
      process.stdout.write(USAGE + "\n");
      return 0;
    }
    options = parsed;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bench: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  const started = Date.now();
  const mainJs = path.resolve(__dirname, "../src/main.js");
  if (!fs.existsSync(mainJs)) throw new Error(`${mainJs} is missing: build first (npx tsc -p .)`);
  const refVersion = options.only === "ours" ? undefined : referenceVersion();
  const kinds: ServerKind[] = (["ours", "reference"] as const).filter((k) => (options.only === undefined || options.only === k) && (k === "ours" || refVersion !== undefined));
  if (kinds.length === 0) throw new Error("docker-registry is not installed (apt-get install docker-registry)");
  if (options.only !== "ours" && refVersion === undefined) progress("docker-registry is not installed: measuring ours only");

  const tmp = chooseTmpBase(options.sizes);
  const base = fs.mkdtempSync(path.join(tmp.dir, "registry-bench-"));
  const spread = spreadStores(base);
  const servers: ServerHandle[] = [];
  const stopServers = async () => {
    for (const s of servers.splice(0)) await s.stop().catch(() => undefined);
  };
  const removeStores = async () => {
    // rm(1): far faster than fs.rm on the ~10^5 small files a full run leaves (still minutes on a busy disk).
    await execFileAsync("rm", ["-rf", base]).catch(() => fs.rmSync(base, { recursive: true, force: true }));
  };
  const cleanup = async () => {
    await stopServers();
    await removeStores();
  };
  const interrupted = () => {
    progress("interrupted: stopping the servers and removing the stores");
    void cleanup().finally(() => process.exit(130));
  };
  process.once("SIGINT", interrupted);
  process.once("SIGTERM", interrupted);

  const header = machineHeader(options, refVersion, `${tmp.note}, ${spread}`);
  header.forEach((l) => progress(l));
  const nonce = randomBytes(6).toString("hex");
  const run: Run = { states: [], series: new Map(), errors: [], background: [], disk: [] };
  const observations = new Map<ServerKind, Observation>();
  const hwm = new Map<ServerKind, number | undefined>();
  let sampler: RssSampler | undefined;
  try {
    for (const kind of kinds) {
      const root = path.join(base, kind);
      fs.mkdirSync(root);
      const server = kind === "ours" ? await startOurs(root, mainJs) : await startReference(root, path.join(base, "reference.yml"));
      servers.push(server);
      run.states.push({ server, roundBlobs: [], tagsReady: false, notes: new Map(), catalogListed: [] });
      progress(`${kind} ready on 127.0.0.1:${server.port} (pid ${server.pid})`);
    }
    sampler = new RssSampler(new Map(servers.map((s) => [s.kind, s.pid])));
    sampler.start(50);
    await runRounds(options, run, sampler, nonce);
    sampler.label = "the durability probe";
    for (const server of servers) {
      hwm.set(server.kind, statusMiB(server.pid, "VmHWM"));
      observations.set(server.kind, await observeDurability(server, `${nonce}/durability`, path.join(base, `strace-${server.kind}.txt`)));
    }
    sampler.stop();
    if (options.phases.includes("crowd")) await runCrowd(options, run, nonce);
  } finally {
    sampler?.stop();
    memorySeries(run, sampler ?? new RssSampler(new Map()), hwm);
    await stopServers();
    try {
      writeReport({ options, header, run, sampler, observations, started });
    } finally {
      progress("removing the stores");
      await removeStores();
      process.off("SIGINT", interrupted);
      process.off("SIGTERM", interrupted);
    }
  }
  return run.errors.length > 0 ? 1 : 0;
}

interface ReportInput {
  options: Options;
  header: string[];
  run: Run;
  sampler: RssSampler | undefined;
  observations: Map<ServerKind, Observation>;
  started: number;
}

function writeReport({ options, header, run, sampler, observations, started }: ReportInput): void {
  const logs = run.states.map((s) => ({ kind: s.server.kind, count: s.server.log.count, last: s.server.log.lines.slice(-5) }));

  const ours = run.series.get("ours") ?? {};
  const reference = run.series.get("reference");
  const rows = buildRows(METRICS, ours, reference);
  const out: string[] = [...header, "", formatTable(rows, reference !== undefined), ""];
  out.push(
    `background: other processes on this machine used ${run.background.map((c) => c.toFixed(2)).join(" / ")} cores on average per round (of ${os.cpus().length}; their load skews both servers)`,
  );
  out.push(
    `disk: ${DISK_PROBE_MIB} MiB written and fdatasynced at the start of each round: ${run.disk.map((v) => v.toFixed(0)).join(" / ")} MB/s (both servers fsync every push, so on a slow disk the push ratios narrow)`,
  );
  const roundPeaks = (kind: ServerKind) => (sampler?.roundPeaksOf(kind) ?? []).map((v) => v.toFixed(0)).join(" / ");
  out.push(`memory: peak RSS per round (MiB): ${run.states.map((s) => `${s.server.kind} ${roundPeaks(s.server.kind)} (highest during ${sampler?.peakLabelOf(s.server.kind) ?? "?"})`).join("; ")}`);
  out.push("durability:");
  for (const s of run.states) {
    out.push(`  ${s.server.kind}: ${STATED[s.server.kind]}`);
    out.push(`    ${observations.get(s.server.kind)?.note ?? "not observed"}`);
  }
  for (const s of run.states) for (const note of s.notes.values()) out.push(`note (${s.server.kind}): ${note}`);
  for (const l of logs) {
    out.push(`server log (${l.kind}): ${l.count} line(s) at warn/error level${l.count > 0 ? "; last: " : ""}`);
    for (const line of l.last) out.push(`    ${line}`);
  }
  if (run.errors.length > 0) out.push(`errors (${run.errors.length}):`, ...run.errors.map((e) => `  ${e}`));
  out.push(`total time ${((Date.now() - started) / 1000).toFixed(0)} s; phases skipped: ${PHASES.filter((p) => !options.phases.includes(p)).join(", ") || "none"}`);
  process.stdout.write(out.join("\n") + "\n");

  if (options.json) {
    const json = {
      header,
      options,
      series: Object.fromEntries(run.series),
      rows: rows.map((r) => ({ key: r.def.key, unit: r.def.unit, better: r.def.better, goal: r.def.goal?.text, ours: r.ours, reference: r.reference, ratio: r.ratio, verdict: r.verdict })),
      rssRoundPeaks: Object.fromEntries(run.states.map((s) => [s.server.kind, sampler?.roundPeaksOf(s.server.kind) ?? []])),
      durability: Object.fromEntries(run.states.map((s) => [s.server.kind, { stated: STATED[s.server.kind], observed: observations.get(s.server.kind) }])),
      notes: Object.fromEntries(run.states.map((s) => [s.server.kind, [...s.notes.values()]])),
      errors: run.errors,
      backgroundCores: run.background,
      diskSyncedMBps: run.disk,
    };
    fs.writeFileSync(options.json, JSON.stringify(json, null, 2) + "\n");
    progress(`results written to ${options.json}`);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
