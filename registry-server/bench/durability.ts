// What each server does to make a push durable, as stated and as observed: strace (when
// installed) is attached to the server while it takes one blob push and one manifest PUT.
import { spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import { makeImage } from "./payload";
import type { ServerKind } from "./options";
import { findOnPath, ServerHandle } from "./servers";

export const STATED: Record<ServerKind, string> = {
  ours: "fsync of the data (small files: written O_SYNC, each write returns once on the device) + rename into place + fsync of the directory, before the 201",
  reference:
    "distribution's filesystem driver source: each written file is fsynced on commit/close, blobs are renamed into place, " +
    "no directory fsync, and small files (links) are truncated and rewritten in place (no temporary + rename)",
};

const SYSCALLS = ["fsync", "fdatasync", "sync_file_range", "syncfs", "rename", "renameat", "renameat2", "openat"];
/** An open whose every write is synced counts as a sync call; other opens are not counted. */
const SYNCED_OPEN = /\bO_D?SYNC\b/;
const ATTACH_TIMEOUT_MS = 5_000;
const PROBE_BLOB_BYTES = 1 << 20;

export interface Observation {
  /** Calls per syscall during the probe, or undefined when strace could not run. */
  counts?: Record<string, number>;
  note: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false; // a temporary file renamed or removed since
  }
}

/**
 * Calls per syscall in an `strace -f -y` log; fsyncs are split by what the descriptor named (a
 * directory or a file). Lines are "<pid> fsync(12</path>) = 0" or "... <unfinished ...>"; the
 * "resumed" halves are not counted again.
 */
export function countSyscalls(trace: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of trace.split("\n")) {
    const m = /^(?:\[pid\s+)?\d*\]?\s*([a-z_0-9]+)\((?:\d+<([^>]*)>)?/.exec(line);
    if (!m || !SYSCALLS.includes(m[1])) continue;
    let name = m[1];
    if (name === "openat") {
      if (!SYNCED_OPEN.test(line) || line.includes("resumed>")) continue;
      name = "open O_SYNC (synced writes)";
    }
    if ((name === "fsync" || name === "fdatasync") && m[2] !== undefined) name += isDirectory(m[2]) ? " of a directory" : " of a file";
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

export async function observeDurability(server: ServerHandle, id: string, traceFile: string): Promise<Observation> {
  const strace = findOnPath("strace");
  if (!strace) return { note: "not observed (strace is not installed: apt-get install strace)" };
  const child = spawn(strace, ["-f", "-y", "-e", `trace=${SYSCALLS.join(",")}`, "-o", traceFile, "-p", String(server.pid)], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const started = Date.now();
  while (!stderr.includes("attached") && child.exitCode === null && Date.now() - started < ATTACH_TIMEOUT_MS) await sleep(20);
  if (!stderr.includes("attached")) {
    child.kill("SIGKILL");
    return { note: `not observed (strace did not attach: ${stderr.trim().slice(0, 200)})` };
  }
  await sleep(300); // every thread attached
  const repo = "durability/probe";
  const image = makeImage(`${id}/probe`, PROBE_BLOB_BYTES);
  let failure = "";
  try {
    await server.client.pushImageBlobs(repo, image);
    await server.client.putManifest(repo, "probe", image.manifest);
  } catch (err) {
    failure = ` (probe failed: ${(err as Error).message})`;
  }
  await sleep(300);
  child.kill("SIGINT");
  const timer = setTimeout(() => child.kill("SIGKILL"), ATTACH_TIMEOUT_MS);
  if (child.exitCode === null) await once(child, "exit");
  clearTimeout(timer);
  const counts = countSyscalls(fs.readFileSync(traceFile, "utf8"));
  const total = (re: RegExp) => Object.entries(counts).reduce((sum, [k, v]) => sum + (re.test(k) ? v : 0), 0);
  const syncs = total(/sync/);
  const renames = total(/^rename/);
  const detail = Object.entries(counts)
    .map(([k, v]) => `${k}×${v}`)
    .join(", ");
  return {
    counts,
    note: `observed with strace during 2 blob pushes (1 MiB layer, config) + 1 manifest PUT: ${syncs} sync calls, ${renames} renames${detail ? ` (${detail})` : ""}${failure}`,
  };
}
