// Reads a Prometheus text exposition into series → value, labels sorted so lookups need no order.
export type Scrape = Map<string, number>;

function seriesKey(name: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}="${labels[k]}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(",")}}`;
}

export function parseExposition(text: string): Scrape {
  const out: Scrape = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.set(seriesKey(m[1], labels), Number(m[3]));
  }
  return out;
}

export async function scrape(base: string): Promise<Scrape> {
  const res = await fetch(`${base}/metrics`);
  if (res.status !== 200) throw new Error(`GET /metrics answered ${res.status}`);
  return parseExposition(await res.text());
}

/** The value of one series; 0 when it is absent (a counter never incremented). */
export function value(s: Scrape, name: string, labels: Record<string, string> = {}): number {
  return s.get(seriesKey(name, labels)) ?? 0;
}

/** Whether a series is present at all. */
export function has(s: Scrape, name: string, labels: Record<string, string> = {}): boolean {
  return s.has(seriesKey(name, labels));
}
