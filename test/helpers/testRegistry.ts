import * as fs from "fs";
import * as path from "path";
import { Daemon, freePort, REPO_ROOT, requireTools, startDaemon, tempDir, waitFor } from "./processes";

/** Entry point of our registry server, built by `make server-build`. */
export const OUR_SERVER = path.join(REPO_ROOT, "registry-server", "dist", "src", "main.js");

/** The implementation {@link startTestRegistry} will start, for test names. */
export function registryUnderTest(): TestRegistry["implementation"] {
    return fs.existsSync(OUR_SERVER) ? "registry-server" : "docker-registry";
}

export interface TestRegistry {
    /** `127.0.0.1:<port>` */
    readonly address: string;
    /** Which server answers: ours, or Debian's docker-registry while ours is not built. */
    readonly implementation: "registry-server" | "docker-registry";
    stop(): Promise<void>;
}

/**
 * Starts a registry on a free loopback port over a temp directory: our server when it is
 * built, else Debian's `docker-registry`; fails (never skips) when neither is there.
 */
export async function startTestRegistry(): Promise<TestRegistry> {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const work = tempDir("reg-");
    const storage = path.join(work, "data");
    fs.mkdirSync(storage);
    let daemon: Daemon;
    const implementation = registryUnderTest();
    if (implementation === "registry-server") {
        daemon = startDaemon(process.execPath, [OUR_SERVER, "serve"], {
            ...process.env,
            REGISTRY_HTTP_ADDR: address,
            REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: storage,
        });
    } else {
        try {
            requireTools("docker-registry");
        } catch {
            throw new Error(`no registry to test against: ${OUR_SERVER} is not built (make server-build) ` +
                "and Debian's docker-registry is not installed");
        }
        const config = path.join(work, "config.yml");
        fs.writeFileSync(config, [
            "version: 0.1",
            "log: { level: warn }",
            `storage: { filesystem: { rootdirectory: ${storage} }, delete: { enabled: true } }`,
            `http: { addr: "${address}" }`,
            "",
        ].join("\n"));
        daemon = startDaemon("docker-registry", ["serve", config]);
    }
    const stop = async () => {
        await daemon.stop();
        fs.rmSync(work, { recursive: true, force: true });
    };
    try {
        await waitFor(`${implementation} to answer GET /v2/ on ${address}`, 15000, async () => {
            if (daemon.child.exitCode !== null) {
                throw new Error(`${implementation} exited (${daemon.child.exitCode}):\n${daemon.output()}`);
            }
            return fetch(`http://${address}/v2/`).then((r) => r.status === 200, () => false);
        });
    } catch (error) {
        await stop();
        throw error;
    }
    return { address, implementation, stop };
}

/** Tags of `repository` as the registry lists them. */
export async function listTags(address: string, repository: string): Promise<string[]> {
    const response = await fetch(`http://${address}/v2/${repository}/tags/list`);
    if (response.status !== 200) {
        throw new Error(`GET /v2/${repository}/tags/list answered ${response.status}: ${await response.text()}`);
    }
    const body = (await response.json()) as { tags?: string[] };
    return body.tags ?? [];
}
