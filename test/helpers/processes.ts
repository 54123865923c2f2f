import { ChildProcess, spawn, spawnSync, SpawnSyncReturns } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** A fresh temp directory; short paths keep unix socket names under 108 bytes. */
export function tempDir(prefix: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Throws one clear error naming every missing tool (make test installs them via apt). */
export function requireTools(...tools: string[]): void {
    const missing = tools.filter((tool) => spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0);
    if (missing.length > 0) {
        throw new Error(`missing tool(s) for this e2e test: ${missing.join(", ")} ` +
            "(make test installs them: apt-get install containerd skopeo buildah docker-registry)");
    }
}

/** Runs a command to completion; throws with its output when it fails. */
export function run(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string } = {}): string {
    const result = spawnSync(cmd, args, { encoding: "utf8", timeout: 45000, ...options });
    if (result.status !== 0) {
        throw new Error(`${cmd} ${args.join(" ")} failed (${describeExit(result)}):\n${result.stdout}\n${result.stderr}`);
    }
    return result.stdout;
}

export function describeExit(result: SpawnSyncReturns<string>): string {
    return result.error ? String(result.error) : `exit ${result.status}, signal ${result.signal}`;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const { port } = server.address() as net.AddressInfo;
            server.close(() => resolve(port));
        });
    });
}

/** Polls `check` every 100 ms until it returns true; throws after `timeoutMs` with `what`. */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (await check()) {
            return;
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A child process whose output is kept for error messages. */
export interface Daemon {
    readonly child: ChildProcess;
    output(): string;
    stop(): Promise<void>;
}

export function startDaemon(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Daemon {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-20000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    return {
        child,
        output: () => output,
        stop: async () => {
            if (child.exitCode !== null || child.signalCode !== null) {
                return;
            }
            child.kill("SIGTERM");
            const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
            await exited;
            clearTimeout(killer);
        },
    };
}
