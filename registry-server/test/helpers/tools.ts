// Running external programs from tests: every command has a timeout, and its
// output is kept so that a failed assertion can show it.
// Dependency-free on purpose (node: modules only, no node:test) so it can be
// imported from jest tests outside this package too.
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import * as path from "node:path";

export interface RunOptions {
  /** Kill the command (and its process group) after this long. Default 60 s. */
  timeoutMs?: number;
  /** Full environment for the command. Default: this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer;
  cwd?: string;
}

export interface RunResult {
  /** Exit code, or null when the command was killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  /** The command line, for messages. */
  command: string;
}

const DEFAULT_TIMEOUT_MS = 60_000;

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Runs `cmd args` without a shell. Never rejects for a non-zero exit: check `code`. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const command = [cmd, ...args].map(quote).join(" ");
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      // Own process group, so a timeout also kills the command's children.
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid, "SIGKILL");
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${command}: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        timedOut,
        command,
      });
    });
    child.stdin.on("error", () => undefined); // the command may exit before reading
    child.stdin.end(opts.input ?? "");
  });
}

/** Sends a signal to a process group started with detached: true; ignores "already gone". */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already exited
    }
  }
}

/** A multi-line description of a finished command, for assertion messages. */
export function describeRun(r: RunResult): string {
  const status = r.timedOut ? "timed out" : r.code === null ? `killed by ${r.signal}` : `exit code ${r.code}`;
  return `$ ${r.command}\n(${status})\n--- stdout ---\n${r.stdout.trim()}\n--- stderr ---\n${r.stderr.trim()}`;
}

/** Runs a command and throws, with its stderr, unless it exits with code 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`command failed:\n${describeRun(r)}`);
  return r;
}

/** The Debian package providing each client the tests use. */
const PACKAGE_OF: Record<string, string> = {
  skopeo: "skopeo",
  buildah: "buildah",
  ctr: "containerd",
  containerd: "containerd",
  "docker-registry": "docker-registry",
};

/**
 * Returns the absolute path of a program on PATH, or throws an error telling
 * how to install it. Tests call this instead of skipping when a client is missing.
 */
export function requireTool(name: string): string {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  const pkg = PACKAGE_OF[name] ?? name;
  throw new Error(
    `required tool "${name}" was not found on PATH. Install it (package "${pkg}") with: ` +
      `apt-get install skopeo buildah containerd   (make test installs them when missing)`,
  );
}
