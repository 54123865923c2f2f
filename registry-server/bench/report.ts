// Pure: the metrics, their goals, medians with ranges, and the printed table.

export type Better = "higher" | "lower";

/** A goal on the ratio ours/reference, or on our own value alone. */
export type Goal = { on: "ratio"; min?: number; max?: number; text: string } | { on: "ours"; max: number; text: string };

export interface MetricDef {
  key: string;
  label: string;
  unit: string;
  better: Better;
  decimals: number;
  goal?: Goal;
}

export const METRICS = [
  { key: "mono.mbps", label: "monolithic push (POST+PUT)", unit: "MB/s", better: "higher", decimals: 0, goal: { on: "ratio", min: 2.5, text: "≥2.5x" } },
  { key: "chunked.mbps", label: "chunked push (16 MiB PATCHes)", unit: "MB/s", better: "higher", decimals: 0, goal: { on: "ratio", min: 3, text: "≥3x" } },
  { key: "pull.mbps", label: "blob pull, sha256 verified", unit: "MB/s", better: "higher", decimals: 0, goal: { on: "ratio", min: 1, text: "≥1x" } },
  { key: "parallel.mbps", label: "parallel pushes (aggregate)", unit: "MB/s", better: "higher", decimals: 0, goal: { on: "ratio", min: 2, text: "≥2x" } },
  { key: "small.blobs", label: "small blob uploads", unit: "blobs/s", better: "higher", decimals: 0, goal: { on: "ratio", min: 2, text: "≥2x" } },
  { key: "small.put", label: "manifest PUT", unit: "req/s", better: "higher", decimals: 0, goal: { on: "ratio", min: 2, text: "≥2x" } },
  { key: "small.get", label: "manifest GET by tag", unit: "req/s", better: "higher", decimals: 0, goal: { on: "ratio", min: 3, text: "≥3x" } },
  { key: "small.head", label: "manifest HEAD by tag", unit: "req/s", better: "higher", decimals: 0 },
  { key: "catalog.seconds", label: "catalog walk (n=100, to the end)", unit: "s", better: "lower", decimals: 3, goal: { on: "ratio", max: 1 / 3, text: "≤0.33 (≥3x faster)" } },
  { key: "tags.rps", label: "tags/list (full list)", unit: "req/s", better: "higher", decimals: 0 },
  { key: "mono.cpu", label: "CPU, monolithic push", unit: "s/GiB", better: "lower", decimals: 2 },
  { key: "chunked.cpu", label: "CPU, chunked push", unit: "s/GiB", better: "lower", decimals: 2 },
  { key: "pull.cpu", label: "CPU, blob pull", unit: "s/GiB", better: "lower", decimals: 2 },
  { key: "parallel.cpu", label: "CPU, parallel pushes", unit: "s/GiB", better: "lower", decimals: 2 },
  { key: "small.blobs.cpu", label: "CPU, small blob uploads (POST/PUT)", unit: "ms/req", better: "lower", decimals: 3 },
  { key: "small.put.cpu", label: "CPU, manifest PUT", unit: "ms/req", better: "lower", decimals: 3 },
  { key: "small.get.cpu", label: "CPU, manifest GET", unit: "ms/req", better: "lower", decimals: 3 },
  { key: "small.head.cpu", label: "CPU, manifest HEAD", unit: "ms/req", better: "lower", decimals: 3 },
  { key: "catalog.cpu", label: "CPU, catalog page", unit: "ms/req", better: "lower", decimals: 3 },
  { key: "tags.cpu", label: "CPU, tags/list", unit: "ms/req", better: "lower", decimals: 3 },
  { key: "rss.peak", label: "peak RSS (VmRSS every 50 ms)", unit: "MiB", better: "lower", decimals: 0, goal: { on: "ours", max: 128, text: "≤128 MiB" } },
  { key: "rss.hwm", label: "VmHWM at the end", unit: "MiB", better: "lower", decimals: 0, goal: { on: "ours", max: 128, text: "≤128 MiB" } },
  { key: "rss.growth", label: "RSS growth, last vs first round peak", unit: "%", better: "lower", decimals: 1, goal: { on: "ours", max: 10, text: "no growth (≤10%)" } },
  { key: "crowd.rss", label: "peak RSS, a crowd of clients at once", unit: "MiB", better: "lower", decimals: 0, goal: { on: "ours", max: 256, text: "≤256 MiB (its limit)" } },
  { key: "crowd.push.mbps", label: "crowd: pushes (aggregate)", unit: "MB/s", better: "higher", decimals: 0 },
  { key: "crowd.pull.mbps", label: "crowd: pulls, verified (aggregate)", unit: "MB/s", better: "higher", decimals: 0 },
] as const satisfies readonly MetricDef[];

export type MetricKey = (typeof METRICS)[number]["key"];

/** Values of one server: per metric, one number per round (NaN where the round failed). */
export type Series = Partial<Record<MetricKey, number[]>>;

export interface Stats {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median and range of the finite values; undefined when there are none. */
export function stats(values: number[] | undefined): Stats | undefined {
  const finite = (values ?? []).filter((v) => Number.isFinite(v));
  if (finite.length === 0) return undefined;
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), n: finite.length };
}

/** ours/reference of each round where both have a value (paired, so drift cancels). */
export function pairedRatios(ours: number[] | undefined, reference: number[] | undefined): number[] {
  const out: number[] = [];
  const n = Math.min(ours?.length ?? 0, reference?.length ?? 0);
  for (let i = 0; i < n; i++) {
    const a = ours?.[i] ?? NaN;
    const b = reference?.[i] ?? NaN;
    if (Number.isFinite(a) && Number.isFinite(b) && b > 0) out.push(a / b);
  }
  return out;
}

export type Verdict = "PASS" | "MISS" | "n/a" | "";

export interface Row {
  def: MetricDef;
  ours?: Stats;
  reference?: Stats;
  ratio?: Stats;
  verdict: Verdict;
}

export function judge(goal: Goal | undefined, ours: Stats | undefined, ratio: Stats | undefined): Verdict {
  if (!goal) return "";
  const value = goal.on === "ratio" ? ratio?.median : ours?.median;
  if (value === undefined) return "n/a";
  const ok = (goal.on === "ours" || goal.min === undefined || value >= goal.min) && (goal.max === undefined || value <= goal.max);
  return ok ? "PASS" : "MISS";
}

export function buildRows(defs: readonly MetricDef[], ours: Series, reference: Series | undefined): Row[] {
  const rows: Row[] = [];
  for (const def of defs) {
    const key = def.key as MetricKey;
    const o = stats(ours[key]);
    const r = reference ? stats(reference[key]) : undefined;
    if (!o && !r) continue;
    const ratio = stats(pairedRatios(ours[key], reference?.[key]));
    rows.push({ def, ours: o, reference: r, ratio, verdict: judge(def.goal, o, ratio) });
  }
  return rows;
}

function fmt(v: number, decimals: number): string {
  return v.toFixed(decimals);
}

export function formatStats(s: Stats | undefined, decimals: number): string {
  if (!s) return "—";
  if (s.n === 1 || s.min === s.max) return fmt(s.median, decimals);
  return `${fmt(s.median, decimals)} [${fmt(s.min, decimals)}–${fmt(s.max, decimals)}]`;
}

export function formatTable(rows: Row[], referenceShown: boolean): string {
  const header = ["metric", "unit", "better", "ours", ...(referenceShown ? ["reference", "ours/ref"] : []), "goal", ""];
  const lines = rows.map((row) => [
    row.def.label,
    row.def.unit,
    row.def.better,
    formatStats(row.ours, row.def.decimals),
    ...(referenceShown ? [formatStats(row.reference, row.def.decimals), formatStats(row.ratio, 2)] : []),
    row.def.goal?.text ?? "",
    row.verdict,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const render = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 3 && i < header.length - 2 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  return [render(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(render)].join("\n");
}
