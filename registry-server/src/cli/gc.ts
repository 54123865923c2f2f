// `registry-server gc [--dry-run] [--json] [--local]`: garbage collection from the command line.
// When a registry server answers on the configured address, it is asked to collect (so its
// locks cover pushes in flight); otherwise the store is collected in this process.
import * as http from "node:http";
import type { Config } from "../config";
import { silentLogger } from "../log";
import { Maintenance } from "../maintenance";
import type { GcReport } from "../registry/gc";
import { Registry } from "../registry/registry";
import { FilesystemDriver } from "../storage/filesystem";
import { formatBytes } from "./format";

export interface GcArgs {
  dryRun: boolean;
  json: boolean;
  local: boolean;
}

export function parseGcArgs(args: string[]): GcArgs {
  const out: GcArgs = { dryRun: false, json: false, local: false };
  for (const a of args) {
    if (a === "--dry-run" || a === "-n") out.dryRun = true;
    else if (a === "--json") out.json = true;
    else if (a === "--local") out.local = true;
    else throw new Error(`unknown option ${a} (gc takes --dry-run, --json, --local)`);
  }
  return out;
}

/** Asks a running server to collect; undefined when nothing listens there. */
function remoteGc(config: Config, dryRun: boolean): Promise<GcReport | undefined> {
  const host = config.http.host === "" || config.http.host === "0.0.0.0" || config.http.host === "::" ? "127.0.0.1" : config.http.host;
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port: config.http.port, method: "POST", path: `/_registry/gc?dryRun=${dryRun}` }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode !== 200) reject(new Error(`the server on ${host}:${config.http.port} answered ${res.statusCode} to garbage collection: ${body.slice(0, 300)}`));
        else resolve(JSON.parse(body) as GcReport);
      });
    });
    // Only connecting is bounded: a collection of a large store may take a while to answer.
    const connecting = setTimeout(() => req.destroy(new Error(`no answer from ${host}:${config.http.port}`)), 2000);
    req.on("socket", (socket) => socket.once("connect", () => clearTimeout(connecting)));
    req.on("close", () => clearTimeout(connecting));
    req.on("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNREFUSED" ? resolve(undefined) : reject(err)));
    req.end();
  });
}

async function localGc(config: Config, dryRun: boolean): Promise<GcReport> {
  const driver = new FilesystemDriver(config.storage.rootDirectory);
  await driver.init();
  return new Maintenance(new Registry(driver), config, silentLogger).runGc(dryRun);
}

export function formatGcReport(r: GcReport, where: string): string {
  const lines = [
    `${r.dryRun ? "would free" : "freed"} ${formatBytes(r.bytesFreed)} in ${r.durationMs} ms (${where}): ` +
      `${r.blobsDeleted} blobs, ${r.manifestsDeleted.length} manifests, ${r.tagsDeleted.length} tags by retention, ` +
      `${r.layerLinksDeleted} layer links, ${r.uploadsPurged} abandoned uploads, ${r.repositoriesDeleted.length} empty repositories`,
    `kept ${r.blobsKept} blobs, ${formatBytes(r.bytesKept)}, across ${r.repositories} repositories`,
  ];
  for (const t of r.tagsDeleted) lines.push(`  tag ${t}`);
  for (const m of r.manifestsDeleted) lines.push(`  manifest ${m}`);
  if (r.dryRun) lines.push("dry run: nothing was deleted");
  return lines.join("\n") + "\n";
}

export async function gcCommand(config: Config, args: string[]): Promise<number> {
  const opts = parseGcArgs(args);
  let report = opts.local ? undefined : await remoteGc(config, opts.dryRun);
  const where = report ? `by the server on port ${config.http.port}` : `in ${config.storage.rootDirectory}`;
  report ??= await localGc(config, opts.dryRun);
  process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + "\n" : formatGcReport(report, where));
  return 0;
}
