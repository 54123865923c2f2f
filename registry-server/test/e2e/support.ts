// Shared setup for the end-to-end tests: the registry under test, a sandbox
// that isolates skopeo/buildah from the machine's containers config, and
// small HTTP checks against the registry API.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before } from "node:test";
import { sha256 } from "../helpers/oci-image";
import { startServer } from "../helpers/server";
import { describeRun, killGroup, requireTool, run, type RunOptions, type RunResult } from "../helpers/tools";

/** Timeout for one client command. */
export const COMMAND_TIMEOUT_MS = 30_000;
/** Timeout for one `it`. */
export const TEST_TIMEOUT_MS = 60_000;

export interface TestRegistry {
  /** e.g. "http://127.0.0.1:40123" */
  url: string;
  /** e.g. "127.0.0.1:40123", for docker:// references */
  host: string;
  close(): Promise<void>;
}

/**
 * Starts the registry under test: our server, in-process, with deletes enabled.
 * E2E_REGISTRY=docker-registry runs the same tests against Debian's CNCF
 * distribution instead, as a reference when triaging a failure.
 */
export async function startRegistry(): Promise<TestRegistry> {
  if (process.env.E2E_REGISTRY === "docker-registry") return startReferenceRegistry();
  const server = await startServer({ deleteEnabled: true });
  return { url: server.url, host: new URL(server.url).host, close: () => server.close() };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function startReferenceRegistry(): Promise<TestRegistry> {
  const bin = requireTool("docker-registry");
  const dir = await mkdtemp(path.join(os.tmpdir(), "e2e-reference-registry-"));
  const port = await freePort();
  const config = path.join(dir, "config.yml");
  await writeFile(
    config,
    `version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: ${dir}/data}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:${port}}\n`,
  );
  const child = spawn(bin, ["serve", config], { detached: true, stdio: "ignore" });
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    killGroup(child.pid, "SIGKILL");
    await rm(dir, { recursive: true, force: true });
  };
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/v2/`)).ok) break;
    } catch {
      if (i > 100) {
        await close();
        throw new Error("docker-registry did not start");
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { url, host: `127.0.0.1:${port}`, close };
}

/**
 * A temp dir with everything skopeo and buildah would otherwise read from the
 * machine: policy, registries.conf, registries.d, auth file, containers.conf,
 * storage.conf, HOME and TMPDIR.
 */
export interface ClientSandbox {
  dir: string;
  /** The environment to run clients with. */
  env: NodeJS.ProcessEnv;
  /** A policy.json accepting anything (for --policy / --signature-policy). */
  policy: string;
  authfile: string;
  registriesD: string;
  /** A fresh subdirectory of the sandbox. */
  subdir(name: string): Promise<string>;
  cleanup(): Promise<void>;
}

export async function makeClientSandbox(): Promise<ClientSandbox> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "e2e-clients-"));
  const p = (name: string) => path.join(dir, name);
  const files: Record<string, string> = {
    "policy.json": JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }),
    "auth.json": "{}",
    "registries.conf": 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n',
    "containers.conf": "",
    "storage.conf": `[storage]\ndriver = "vfs"\ngraphroot = ${JSON.stringify(p("storage"))}\nrunroot = ${JSON.stringify(p("run"))}\n`,
  };
  for (const [name, content] of Object.entries(files)) await writeFile(p(name), content);
  for (const d of ["registries.d", "home", "tmp"]) await mkdir(p(d));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CONTAINERS_REGISTRIES_CONF: p("registries.conf"),
    CONTAINERS_CONF: p("containers.conf"),
    CONTAINERS_STORAGE_CONF: p("storage.conf"),
    REGISTRY_AUTH_FILE: p("auth.json"),
    BUILDAH_ISOLATION: "chroot",
    HOME: p("home"),
    XDG_CONFIG_HOME: p("home/.config"),
    XDG_RUNTIME_DIR: p("run"),
    TMPDIR: p("tmp"),
  };
  return {
    dir,
    env,
    policy: p("policy.json"),
    authfile: p("auth.json"),
    registriesD: p("registries.d"),
    subdir: async (name) => {
      const d = p(name);
      await mkdir(d, { recursive: true });
      return d;
    },
    cleanup: () => rm(dir, { recursive: true, force: true, maxRetries: 3 }),
  };
}

export interface E2E {
  reg: TestRegistry;
  sb: ClientSandbox;
}

/**
 * Registers before/after hooks in the enclosing describe: fails (never skips)
 * when a client tool is missing, starts the registry and a client sandbox,
 * and cleans both up. The returned object is filled in by the before hook.
 */
export function useRegistryAndClients(tools: readonly string[]): E2E {
  const env = {} as E2E;
  before(async () => {
    for (const tool of tools) requireTool(tool);
    env.reg = await startRegistry();
    env.sb = await makeClientSandbox();
  });
  after(async () => {
    await env.sb?.cleanup();
    await env.reg?.close();
  });
  return env;
}

/** Runs a client program in the sandbox with the default command timeout. */
export function runIn(sb: ClientSandbox, cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run(requireTool(cmd), args, { timeoutMs: COMMAND_TIMEOUT_MS, env: sb.env, ...opts });
}

/** Runs `skopeo` with the sandbox's policy and registries.d. */
export function skopeo(sb: ClientSandbox, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return runIn(sb, "skopeo", ["--policy", sb.policy, "--registries.d", sb.registriesD, ...args], opts);
}

/** Asserts that a command exited 0; the message has the command, stdout and stderr. */
export function assertOk(r: RunResult, what: string): RunResult {
  assert.equal(r.code, 0, `${what} failed:\n${describeRun(r)}`);
  return r;
}

/** Parses a command's stdout as JSON, failing with the command's output. */
export function parseJson<T = any>(r: RunResult, what: string): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch (e) {
    assert.fail(`${what}: stdout is not JSON (${(e as Error).message}):\n${describeRun(r)}`);
  }
}

export const ACCEPT_ALL_MANIFESTS = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
].join(", ");

export interface HttpResult {
  status: number;
  headers: Headers;
  body: Buffer;
  /** "METHOD url -> status", plus headers and a body excerpt: for assertion messages. */
  describe: string;
}

/** One request to the registry, with a description for assertion messages. */
export async function http(
  method: string,
  url: string,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  const res = await fetch(url, { method, headers, signal: AbortSignal.timeout(COMMAND_TIMEOUT_MS) });
  const body = Buffer.from(await res.arrayBuffer());
  const hdrs = [...res.headers].map(([k, v]) => `${k}: ${v}`).join("\n  ");
  const describe = `${method} ${url} (${JSON.stringify(headers)}) -> ${res.status}\n  ${hdrs}\n  body: ${body
    .toString("utf8", 0, Math.min(body.length, 600))
    .replace(/[^\x20-\x7e\n]/g, ".")}`;
  return { status: res.status, headers: res.headers, body, describe };
}

/** GETs a manifest and asserts 200 with the expected Docker-Content-Digest and byte digest. */
export async function assertManifestServed(
  reg: TestRegistry,
  repo: string,
  reference: string,
  expectedDigest: string,
  query = "",
): Promise<HttpResult> {
  const r = await http("GET", `${reg.url}/v2/${repo}/manifests/${reference}${query}`, { Accept: ACCEPT_ALL_MANIFESTS });
  assert.equal(r.status, 200, r.describe);
  assert.equal(r.headers.get("docker-content-digest"), expectedDigest, r.describe);
  assert.equal(sha256(r.body), expectedDigest, `manifest bytes do not hash to the digest:\n${r.describe}`);
  return r;
}

/** HEADs a blob and asserts 200 with the expected size. */
export async function assertBlobPresent(reg: TestRegistry, repo: string, digest: string, size?: number): Promise<void> {
  const r = await http("HEAD", `${reg.url}/v2/${repo}/blobs/${digest}`);
  assert.equal(r.status, 200, r.describe);
  if (size !== undefined) assert.equal(r.headers.get("content-length"), String(size), r.describe);
}
