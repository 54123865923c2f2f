// `registry-server fsck [--repair] [--json]` (issue 5): checks the store in the configured root
// directory. Read-only unless --repair, so it can run beside a server. Exit code 0 when clean,
// 1 when problems were found (repaired or not), 2 when it cannot run as asked.
import type { Config } from "../config";
import { fsck, FsckFinding, FsckReport } from "../registry/fsck";
import { Registry } from "../registry/registry";
import { ifExists } from "../storage/driver";
import { FilesystemDriver } from "../storage/filesystem";
import { formatBytes } from "./format";

/** The command cannot run as asked: a bad option, or no store to check. */
export class FsckUsageError extends Error {}

export interface FsckArgs {
  repair: boolean;
  json: boolean;
}

export function parseFsckArgs(args: string[]): FsckArgs {
  const out: FsckArgs = { repair: false, json: false };
  for (const a of args) {
    if (a === "--repair") out.repair = true;
    else if (a === "--json") out.json = true;
    else throw new FsckUsageError(`unknown option ${a} (fsck takes --repair, --json)`);
  }
  return out;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** 95000 → "1 min". */
export function formatAge(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86400)} d`;
}

function formatFinding(label: string, f: FsckFinding): string {
  const where = f.repo === undefined ? (f.digest ?? f.path) : f.tag !== undefined ? `${f.repo}:${f.tag}` : f.digest !== undefined ? `${f.repo}@${f.digest}` : f.repo;
  let action = "";
  if (f.repaired) action = `; repaired (${f.repair})`;
  else if (f.repairError !== undefined) action = `; repair failed (${f.repairError}): ${f.repair}`;
  else if (f.repair !== "none") action = `; --repair would ${f.repair}`;
  return `${label} ${f.kind} ${where}: ${f.detail}${action} [${f.path}]`;
}

export function formatFsckReport(r: FsckReport, root: string): string {
  const c = r.checked;
  const { staleTemporaries, emptyBlobDirectories, uploads } = r.leftovers;
  const lines = [
    `checked ${root} in ${r.durationMs} ms: ${plural(c.blobs, "blob")} (${formatBytes(c.bytesHashed)} hashed), ` +
      `${plural(c.repositories, "repository", "repositories")}, ${plural(c.links, "link")} (${c.layerLinks} layer, ${c.revisionLinks} manifest), ` +
      `${plural(c.tags, "tag")}, ${plural(c.referrers, "referrer entry", "referrer entries")}`,
    `leftovers: ${plural(staleTemporaries, "temporary file")} older than an hour (the server removes them when it starts), ${plural(emptyBlobDirectories, "empty blob directory", "empty blob directories")}, ${plural(uploads.length, "upload session")}`,
    ...uploads.map((u) => `  upload ${u.repo} ${u.id}: ${formatBytes(u.bytes)}, idle ${formatAge(u.ageMs)}`),
    ...r.problems.map((p) => formatFinding("problem", p)),
    ...r.warnings.map((w) => formatFinding("warning", w)),
  ];
  if (r.quarantine) lines.push(`quarantined data is in ${r.quarantine} below the storage root`);
  const warnings = r.warnings.length > 0 ? `, ${plural(r.warnings.length, "warning")}` : "";
  if (r.ok) lines.push(`clean${warnings}`);
  else lines.push(`${plural(r.problems.length, "problem")}${warnings}; ${r.repair ? `repaired ${r.repaired}` : "run fsck --repair to fix them"}`);
  return lines.join("\n") + "\n";
}

export async function fsckCommand(config: Config, args: string[]): Promise<number> {
  const opts = parseFsckArgs(args);
  const root = config.storage.rootDirectory;
  const driver = new FilesystemDriver(root);
  const top = await ifExists(driver.stat("/"));
  if (!top?.isDir) throw new FsckUsageError(`storage root ${root} is not a directory`);
  const report = await fsck(new Registry(driver), { repair: opts.repair });
  // One JSON object on one line: other tools (the crash test) parse it.
  process.stdout.write(opts.json ? JSON.stringify(report) + "\n" : formatFsckReport(report, root));
  return report.ok ? 0 : 1;
}
