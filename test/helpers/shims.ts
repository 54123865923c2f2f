import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { tempDir } from "./processes";

/**
 * A directory of fake command-line tools for running the stack's shell snippets and
 * scripts without Docker, kind or Pulumi. Every shim appends `<tool> <args>` to the log.
 */
export class ShimDir {
    public readonly dir = tempDir("shims-");
    public readonly log = path.join(this.dir, "calls.log");

    /** Adds tool `name` whose behaviour is the bash `body`; `$log` names the call log. */
    add(name: string, body = ""): this {
        const file = path.join(this.dir, name);
        fs.writeFileSync(file, `#!/bin/bash\nlog="${this.log}"\necho "${name} $*" >> "$log"\n${body}\n`);
        fs.chmodSync(file, 0o755);
        return this;
    }

    /** Makes real system tools available when PATH is this directory alone. */
    link(...tools: string[]): this {
        for (const tool of tools) {
            const real = ["/usr/bin", "/bin"].map((d) => path.join(d, tool)).find((p) => fs.existsSync(p));
            if (!real) {
                throw new Error(`system tool ${tool} not found in /usr/bin or /bin`);
            }
            fs.symlinkSync(real, path.join(this.dir, tool));
        }
        return this;
    }

    /** The logged calls, one string per call. */
    calls(): string[] {
        return fs.existsSync(this.log) ? fs.readFileSync(this.log, "utf8").trimEnd().split("\n") : [];
    }

    /** PATH with the shims first, then node's and the system directories. */
    path(): string {
        return `${this.dir}:${path.dirname(process.execPath)}:/usr/bin:/bin`;
    }

    remove(): void {
        fs.rmSync(this.dir, { recursive: true, force: true });
    }
}

export interface ScriptResult {
    readonly status: number | null;
    readonly stdout: string;
    readonly stderr: string;
}

/** Runs `script` the way @pulumi/command's local.Command does: `/bin/sh -c`. */
export function runShell(script: string, env: NodeJS.ProcessEnv): ScriptResult {
    const result = spawnSync("/bin/sh", ["-c", script], { env, encoding: "utf8", timeout: 20000 });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs one of the repository's bash scripts with exactly `env`. */
export function runScript(script: string, args: string[], env: NodeJS.ProcessEnv, cwd?: string): ScriptResult {
    const result = spawnSync("/bin/bash", [script, ...args], { env, cwd, encoding: "utf8", timeout: 30000 });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
