// A private containerd for tests: its own root, state, socket and config in a
// temp dir, started as a child process and always cleaned up by stop().
// Dependency-free on purpose (node: modules only, no node:test): jest tests
// outside this package import it too.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { killGroup, requireTool, run, runOk, type RunOptions, type RunResult } from "./tools";

export interface Containerd {
  /** The gRPC socket path, for `ctr --address`. */
  address: string;
  /** The temp dir holding root/, state/, the config, the socket and containerd.log. */
  dir: string;
  /** Kills containerd (TERM, then KILL) and removes `dir`. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartContainerdOptions {
  /** How long to wait for the socket to accept connections. Default 20 s. */
  readyTimeoutMs?: number;
}

function configToml(dir: string, address: string): string {
  const q = (s: string) => JSON.stringify(s); // a JSON string is a valid TOML basic string here
  return [
    "version = 2",
    `root = ${q(path.join(dir, "root"))}`,
    `state = ${q(path.join(dir, "state"))}`,
    // CRI needs CNI and a kubelet; none of that is wanted for pulls.
    `disabled_plugins = ["io.containerd.grpc.v1.cri"]`,
    "",
    "[grpc]",
    `  address = ${q(address)}`,
    "",
    "[ttrpc]",
    `  address = ${q(address + ".ttrpc")}`,
    "",
    "[debug]",
    `  address = ""`,
    "",
    "[metrics]",
    `  address = ""`,
    "",
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(path.join(dir, "opt"))}`,
    "",
  ].join("\n");
}

function canConnect(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
}

function lastLines(file: string, n = 30): string {
  try {
    return readFileSync(file, "utf8").trim().split("\n").slice(-n).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Unmounts anything containerd left mounted below `dir` (e.g. after a KILL mid-unpack). */
async function unmountBelow(dir: string): Promise<void> {
  let mounts: string;
  try {
    mounts = await readFile("/proc/self/mounts", "utf8");
  } catch {
    return;
  }
  const targets = mounts
    .split("\n")
    .map((line) => line.split(" ")[1])
    .filter((t): t is string => t !== undefined && (t === dir || t.startsWith(dir + "/")))
    .sort((a, b) => b.length - a.length); // deepest first
  for (const t of targets) await run("umount", ["-l", t], { timeoutMs: 10_000 }).catch(() => undefined);
}

/**
 * Starts containerd with a temp root/state/socket and a config that disables
 * CRI. Resolves once its socket accepts connections (bounded wait); rejects
 * with the tail of its log if it exits or does not get ready in time.
 */
export async function startContainerd(opts: StartContainerdOptions = {}): Promise<Containerd> {
  const bin = requireTool("containerd");
  requireTool("ctr");
  const dir = await mkdtemp(path.join(os.tmpdir(), "ctrd-"));
  const address = path.join(dir, "containerd.sock");
  const configPath = path.join(dir, "config.toml");
  const logPath = path.join(dir, "containerd.log");
  await mkdir(path.join(dir, "root"));
  await mkdir(path.join(dir, "state"));
  await writeFile(configPath, configToml(dir, address));

  const log = createWriteStream(logPath);
  const child: ChildProcess = spawn(bin, ["--config", configPath, "--log-level", "info"], {
    detached: true, // own process group: stop() also reaches shims, if any
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
    child.once("error", () => {
      exited = true;
      resolve();
    });
  });
  // If the test process dies without calling stop(), do not leave containerd behind.
  const onExit = () => killGroup(child.pid, "SIGKILL");
  process.once("exit", onExit);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener("exit", onExit);
    if (!exited) {
      killGroup(child.pid, "SIGTERM");
      const graceful = await Promise.race([
        exitedPromise.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 5_000).unref()),
      ]);
      if (!graceful) {
        killGroup(child.pid, "SIGKILL");
        await exitedPromise;
      }
    }
    await new Promise<void>((resolve) => log.end(resolve));
    await unmountBelow(dir);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };

  const readyTimeoutMs = opts.readyTimeoutMs ?? 20_000;
  const deadline = Date.now() + readyTimeoutMs;
  try {
    for (;;) {
      if (exited) throw new Error(`containerd exited before it was ready (code ${child.exitCode})`);
      if (await canConnect(address)) break;
      if (Date.now() > deadline) throw new Error(`containerd socket ${address} not ready after ${readyTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (e) {
    const message = `${(e as Error).message}\n--- containerd log (${logPath}) ---\n${lastLines(logPath)}`;
    await stop();
    throw new Error(message);
  }
  return { address, dir, stop };
}

export interface CtrOptions extends RunOptions {
  /** containerd namespace (`ctr --namespace`). Default "default". */
  namespace?: string;
}

function ctrArgs(address: string, args: readonly string[], opts: CtrOptions): string[] {
  return ["--address", address, ...(opts.namespace ? ["--namespace", opts.namespace] : []), ...args];
}

/** Runs `ctr --address <address> [--namespace ns] <args>`; check `code`, or use ctrOk. */
export function ctr(address: string, args: readonly string[], opts: CtrOptions = {}): Promise<RunResult> {
  return run(requireTool("ctr"), ctrArgs(address, args, opts), opts);
}

/** Like ctr(), but throws (with stderr) unless ctr exits with code 0. */
export function ctrOk(address: string, args: readonly string[], opts: CtrOptions = {}): Promise<RunResult> {
  return runOk(requireTool("ctr"), ctrArgs(address, args, opts), opts);
}

/**
 * Writes `<hostsDir>/<registryHost>/hosts.toml` so that
 * `ctr images pull --hosts-dir <hostsDir> <registryHost>/repo:tag` pulls from
 * `mirrorUrl` (e.g. "http://127.0.0.1:40123") instead. containerd then sends
 * `?ns=<registryHost>` on its requests to the mirror.
 */
export async function writeMirrorHostsToml(hostsDir: string, registryHost: string, mirrorUrl: string): Promise<string> {
  const dir = path.join(hostsDir, registryHost);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, "hosts.toml");
  const scheme = registryHost.startsWith("localhost") || registryHost.startsWith("127.") ? "http" : "https";
  await writeFile(
    file,
    [
      `server = ${JSON.stringify(`${scheme}://${registryHost}`)}`,
      "",
      `[host.${JSON.stringify(mirrorUrl)}]`,
      `  capabilities = ["pull", "resolve"]`,
      "",
    ].join("\n"),
  );
  return file;
}
