// Runs the registry-server entry point as a real child process, the way a pod runs it: env
// configuration, JSON log lines on stdout, signals. Every wait is bounded; `stopAll` kills
// whatever a test file left running and removes its temporary directories.
import { spawn, type ChildProcessByStdio } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { Readable } from "node:stream";

export const MAIN = path.resolve(__dirname, "../../src/main.js");

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type LogRecord = Record<string, unknown>;

const running = new Set<ServerProcess>();
const tempDirs: string[] = [];

export class ServerProcess {
  private readonly child: ChildProcessByStdio<null, Readable, Readable>;
  private readonly wakers = new Set<() => void>();
  private status: ExitStatus | undefined;
  readonly exited: Promise<ExitStatus>;
  stdout = "";
  stderr = "";
  /** Base URL once `listening()` has seen the port. */
  url = "";

  constructor(args: readonly string[], env: Record<string, string>) {
    // Only PATH is inherited: a REGISTRY_* variable of the caller must not change the child.
    this.child = spawn(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    running.add(this);
    this.child.stdout.setEncoding("utf8").on("data", (s: string) => {
      this.stdout += s;
      this.wake();
    });
    this.child.stderr.setEncoding("utf8").on("data", (s: string) => {
      this.stderr += s;
      this.wake();
    });
    this.exited = new Promise((resolve) => {
      this.child.on("close", (code, signal) => {
        this.status = { code, signal };
        running.delete(this);
        this.wake();
        resolve(this.status);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get hasExited(): boolean {
    return this.status !== undefined;
  }

  /** Complete stdout lines so far. */
  lines(): string[] {
    return this.stdout.split("\n").slice(0, -1);
  }

  /** Stdout lines that parse as JSON objects. */
  records(): LogRecord[] {
    const out: LogRecord[] = [];
    for (const line of this.lines()) {
      try {
        const v: unknown = JSON.parse(line);
        if (typeof v === "object" && v !== null && !Array.isArray(v)) out.push(v as LogRecord);
      } catch {
        // a text-format line
      }
    }
    return out;
  }

  /** Output so far, for assertion messages. */
  describe(): string {
    return `--- stdout ---\n${this.stdout.trim()}\n--- stderr ---\n${this.stderr.trim()}`;
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.hasExited) this.child.kill(sig);
  }

  /** Resolves with the first non-undefined value of `probe`, re-run on every output and at exit. */
  waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const value = probe();
        if (value !== undefined) finish(() => resolve(value));
        else if (this.hasExited) finish(() => reject(new Error(`process exited before ${what}\n${this.describe()}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.describe()}`))), timeoutMs);
      const finish = (settle: () => void): void => {
        clearTimeout(timer);
        this.wakers.delete(check);
        settle();
      };
      this.wakers.add(check);
      check();
    });
  }

  /** The log record that satisfies `match`, waiting for it. */
  waitForRecord(match: (r: LogRecord) => boolean, timeoutMs: number, what: string): Promise<LogRecord> {
    return this.waitFor(() => this.records().find(match), timeoutMs, what);
  }

  /** Waits for the startup line (JSON `{"msg":"listening","port":N}` or text `listening … port=N`). */
  async listening(timeoutMs = 10_000): Promise<number> {
    const port = await this.waitFor(
      () => {
        const rec = this.records().find((r) => r.msg === "listening");
        if (rec) return typeof rec.port === "number" ? rec.port : undefined;
        const text = /\blistening\b.*\bport=(\d+)/.exec(this.stdout);
        return text ? Number(text[1]) : undefined;
      },
      timeoutMs,
      "the listening line",
    );
    this.url = `http://127.0.0.1:${port}`;
    return port;
  }

  /** Exit status within `timeoutMs`; past it the process is killed and the wait fails. */
  async waitForExit(timeoutMs: number): Promise<ExitStatus> {
    try {
      return await withTimeout(this.exited, timeoutMs, `exit of process ${this.pid}`);
    } catch (err) {
      this.signal("SIGKILL");
      throw new Error(`${(err as Error).message}\n${this.describe()}`);
    }
  }

  private wake(): void {
    for (const w of [...this.wakers]) w();
  }
}

/** The environment of a server on loopback, on an ephemeral port, over `root`. */
export function serverEnv(root: string, env: Record<string, string> = {}): Record<string, string> {
  return {
    REGISTRY_HTTP_ADDR: "127.0.0.1:0",
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root,
    REGISTRY_HTTP_DRAINTIMEOUT: "5s",
    REGISTRY_LOG_FORMATTER: "json",
    ...env,
  };
}

/** Starts `registry-server serve` and waits until it listens. */
export async function startServerProcess(root: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const proc = new ServerProcess(["serve"], serverEnv(root, env));
  await proc.listening();
  return proc;
}

/** Runs the entry point to its exit (a command expected to end by itself). */
export async function runToExit(args: readonly string[], env: Record<string, string>, timeoutMs = 10_000): Promise<ExitStatus & { stdout: string; stderr: string }> {
  const proc = new ServerProcess(args, env);
  const status = await proc.waitForExit(timeoutMs);
  return { ...status, stdout: proc.stdout, stderr: proc.stderr };
}

export async function makeTempDir(label: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), `registry-${label}-`));
  tempDirs.push(dir);
  return dir;
}

/** For `after`: SIGKILLs every process still running, then removes the temporary directories. */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...running].map(async (p) => {
      p.signal("SIGKILL");
      await p.waitForExit(5_000).catch(() => undefined);
    }),
  );
  await Promise.all(tempDirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or a failure naming `what` once `ms` have passed. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
