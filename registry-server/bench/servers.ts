// Starting and stopping the two servers as child processes, each on a fresh store and port.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { RegistryClient } from "./client";
import type { ServerKind } from "./options";

const HOST = "127.0.0.1";
const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
const LOG_KEEP = 20;

export interface ServerHandle {
  kind: ServerKind;
  pid: number;
  port: number;
  root: string;
  client: RegistryClient;
  log: LogTail;
  stop(): Promise<void>;
}

/** The last lines a server wrote (it logs only warnings and errors here), and how many. */
export class LogTail {
  lines: string[] = [];
  count = 0;
  private partial = "";

  feed(chunk: Buffer): void {
    const text = this.partial + chunk.toString("utf8");
    const parts = text.split("\n");
    this.partial = parts.pop() ?? "";
    for (const line of parts) {
      if (line.trim() === "") continue;
      this.count++;
      this.lines.push(line.slice(0, 400));
      if (this.lines.length > LOG_KEEP) this.lines.shift();
    }
  }
}

export function findOnPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function referenceVersion(): string | undefined {
  const bin = findOnPath("docker-registry");
  if (!bin) return undefined;
  try {
    return execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return "docker-registry (version unknown)";
  }
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  srv.listen(0, HOST);
  await once(srv, "listening");
  const port = (srv.address() as net.AddressInfo).port;
  srv.close();
  await once(srv, "close");
  return port;
}

/** The environment without REGISTRY_* (distribution reads them as overrides of its config file). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("REGISTRY_")) env[k] = v;
  return { ...env, ...extra };
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return once(child, "exit").then(() => undefined);
}

async function waitReady(child: ChildProcess, client: RegistryClient, log: LogTail, what: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited before it was ready (code ${child.exitCode ?? child.signalCode}): ${log.lines.slice(-5).join(" | ")}`);
    }
    try {
      await client.request("GET", "/v2/", { expect: [200] });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${what} was not ready on GET /v2/ within ${READY_TIMEOUT_MS / 1000}s`);
}

async function launch(kind: ServerKind, root: string, port: number, command: string, args: string[], env: NodeJS.ProcessEnv): Promise<ServerHandle> {
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  const log = new LogTail();
  child.stdout?.on("data", (c: Buffer) => log.feed(c));
  child.stderr?.on("data", (c: Buffer) => log.feed(c));
  const spawnError = new Promise<never>((_, reject) => child.once("error", reject));
  const client = new RegistryClient(HOST, port);
  const stop = async (): Promise<void> => {
    client.close();
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited(child);
    clearTimeout(timer);
  };
  try {
    await Promise.race([waitReady(child, client, log, kind), spawnError]);
  } catch (err) {
    await stop();
    throw err;
  }
  if (child.pid === undefined) throw new Error(`${kind} has no pid`);
  return { kind, pid: child.pid, port, root, client, log, stop };
}

/** Node flags our server runs with: those of its image (NODE_OPTIONS in the Dockerfile), unless BENCH_NODE_FLAGS says otherwise. */
export const OUR_NODE_FLAGS = (process.env.BENCH_NODE_FLAGS ?? "--max-old-space-size=160 --max-semi-space-size=1").split(" ").filter((f) => f !== "");
/** The malloc settings of its image (ENV in the Dockerfile). */
export const OUR_MALLOC_ENV = { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "131072" };

/** Our server from `mainJs`; `nodeFlags` and `extraEnv` override the image's settings (A/Bs). */
export async function startOurs(root: string, mainJs: string, nodeFlags = OUR_NODE_FLAGS, extraEnv: Record<string, string> = {}): Promise<ServerHandle> {
  const port = await freePort();
  const env = cleanEnv({
    REGISTRY_HTTP_ADDR: `${HOST}:${port}`,
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root,
    REGISTRY_LOG_LEVEL: "warn",
    REGISTRY_LOG_FORMATTER: "json",
    ...OUR_MALLOC_ENV,
    ...extraEnv,
  });
  return launch("ours", root, port, process.execPath, [...nodeFlags, mainJs, "serve"], env);
}

export async function startReference(root: string, configPath: string): Promise<ServerHandle> {
  const port = await freePort();
  const config = [
    "version: 0.1",
    "log:",
    "  level: error",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(root)}`,
    "  delete:",
    "    enabled: true",
    "http:",
    `  addr: ${HOST}:${port}`,
    "",
  ].join("\n");
  fs.writeFileSync(configPath, config);
  const bin = findOnPath("docker-registry") ?? "docker-registry";
  return launch("reference", root, port, bin, ["serve", configPath], cleanEnv({}));
}
