// The entry point as an operator meets it: configuration errors, startup failures, the
// listening line, the API version check and one log line per request.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as http from "node:http";
import * as net from "node:net";
import { symlink, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { pushBlob, sha256 } from "../helpers/registry";
import { delay, LogRecord, makeTempDir, runToExit, serverEnv, ServerProcess, startServerProcess, stopAll } from "./proc";
import { expectBlob } from "./registry-io";

/** A startup failure is one plain `registry-server: …` line on stderr: no stack trace. */
function assertOneLine(stderr: string, what: string): string {
  const lines = stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `${what}: expected one line on stderr, got:\n${stderr}`);
  assert.match(lines[0], /^registry-server: \S/, what);
  return lines[0];
}

async function exitsWithOneLine(args: string[], env: Record<string, string>, what: string): Promise<{ code: number | null; line: string; stdout: string }> {
  const r = await runToExit(args, env);
  assert.equal(r.signal, null, `${what}: killed by ${r.signal}\n${r.stderr}`);
  return { code: r.code, line: assertOneLine(r.stderr, what), stdout: r.stdout };
}

const BAD_SETTINGS: [string, string][] = [
  ["REGISTRY_HTTP_ADDR", "nonsense"],
  ["REGISTRY_STORAGE_DELETE_ENABLED", "maybe"],
  ["REGISTRY_LOG_LEVEL", "loud"],
  ["REGISTRY_HTTP_DRAINTIMEOUT", "soon"],
];

describe("registry-server refuses what it cannot run with", () => {
  let root = "";
  before(async () => {
    root = await makeTempDir("cli");
  });
  after(stopAll);

  for (const [variable, value] of BAD_SETTINGS) {
    it(`${variable}=${value} prints one line naming the variable and exits 2`, async () => {
      const r = await exitsWithOneLine(["serve"], serverEnv(root, { [variable]: value }), `${variable}=${value}`);
      assert.equal(r.code, 2);
      assert.ok(r.line.includes(variable), r.line);
      assert.equal(r.stdout, "");
    });
  }

  it("an unknown command prints one usage line and exits 2", async () => {
    const r = await exitsWithOneLine(["frobnicate"], serverEnv(root), "unknown command");
    assert.equal(r.code, 2);
    assert.match(r.line, /frobnicate/);
    assert.match(r.line, /usage/);
  });

  it("serve with extra arguments prints one usage line and exits 2", async () => {
    const r = await exitsWithOneLine(["serve", "now"], serverEnv(root), "serve now");
    assert.equal(r.code, 2);
    assert.match(r.line, /usage/);
  });

  it("a port already in use prints one plain line and exits 2", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = blocker.address() as net.AddressInfo;
      const r = await exitsWithOneLine(["serve"], serverEnv(root, { REGISTRY_HTTP_ADDR: `127.0.0.1:${port}` }), "port in use");
      assert.equal(r.code, 2);
      assert.match(r.line, new RegExp(`in use.*${port}`));
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it("a storage root that is a file prints one plain line and exits non-zero", async () => {
    const file = path.join(root, "a-file");
    await writeFile(file, "not a directory");
    const r = await exitsWithOneLine(["serve"], serverEnv(file), "root is a file");
    assert.notEqual(r.code, 0);
  });

  it("a storage root that cannot be created (a symlink loop) prints one plain line and exits non-zero", async () => {
    const loop = path.join(root, "loop");
    await symlink(loop, loop);
    const r = await exitsWithOneLine(["serve"], serverEnv(loop), "root is a symlink loop");
    assert.notEqual(r.code, 0);
    assert.ok(r.line.includes(loop), r.line);
  });
});

/** The `request` log record of a finished request, waiting for it. */
function requestRecord(proc: ServerProcess, method: string, requestPath: string, timeoutMs = 5_000): Promise<LogRecord> {
  return proc.waitForRecord((r) => r.msg === "request" && r.method === method && r.path === requestPath, timeoutMs, `the log line of ${method} ${requestPath}`);
}

describe("a running registry-server with JSON logs", () => {
  let proc: ServerProcess;
  before(async () => {
    proc = await startServerProcess(await makeTempDir("cli-json"));
  });
  after(stopAll);

  it("logs a JSON listening line with the bound port", () => {
    const rec = proc.records().find((r) => r.msg === "listening");
    assert.ok(rec, proc.describe());
    assert.equal(rec.level, "info");
    assert.equal(typeof rec.time, "string");
    assert.ok(typeof rec.port === "number" && rec.port > 0, `port ${String(rec.port)}`);
    assert.equal(proc.url, `http://127.0.0.1:${rec.port}`);
  });

  it("GET /v2/ answers 200 {} with Docker-Distribution-API-Version: registry/2.0", async () => {
    const res = await fetch(`${proc.url}/v2/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("docker-distribution-api-version"), "registry/2.0");
    assert.deepEqual(await res.json(), {});
  });

  it("every request produces exactly one JSON log line with method, path, status, bytesIn, bytesOut and durationMs", async () => {
    const paths = ["/v2/cli/counted/tags/list", "/v2/cli/counted/manifests/absent", "/v2/cli/counted/blobs/uploads/"];
    await (await fetch(`${proc.url}${paths[0]}`)).arrayBuffer();
    await (await fetch(`${proc.url}${paths[1]}`, { method: "HEAD" })).arrayBuffer();
    await (await fetch(`${proc.url}${paths[2]}`, { method: "POST" })).arrayBuffer();
    const recs = [await requestRecord(proc, "GET", paths[0]), await requestRecord(proc, "HEAD", paths[1]), await requestRecord(proc, "POST", paths[2])];
    assert.deepEqual(
      recs.map((r) => r.status),
      [404, 404, 202],
    );
    for (const rec of recs) {
      for (const field of ["bytesIn", "bytesOut", "durationMs"]) {
        assert.ok(typeof rec[field] === "number" && rec[field] >= 0, `${field} in ${JSON.stringify(rec)}`);
      }
    }
    // Give a duplicate line the time to show up.
    await delay(200);
    for (const p of paths) {
      assert.equal(proc.records().filter((r) => r.msg === "request" && r.path === p).length, 1, `log lines of ${p}:\n${proc.stdout}`);
    }
  });

  it("request log lines count the request body in bytesIn and the response body in bytesOut", async () => {
    const blob = randomBytes(4096);
    await pushBlob(proc.url, "cli/sizes", blob);
    await expectBlob(proc.url, "cli/sizes", blob);
    const upload = await requestRecord(proc, "POST", "/v2/cli/sizes/blobs/uploads/");
    const download = await requestRecord(proc, "GET", `/v2/cli/sizes/blobs/${sha256(blob)}`);
    assert.equal(upload.status, 201);
    assert.ok(Number(upload.bytesIn) >= blob.length, `bytesIn ${String(upload.bytesIn)} of a ${blob.length}-byte upload`);
    assert.ok(Number(download.bytesOut) >= blob.length, `bytesOut ${String(download.bytesOut)} of a ${blob.length}-byte download`);
  });

  it("a request whose client goes away mid-body is logged once as a request, not as a server error", async () => {
    const url = new URL(`${proc.url}/v2/cli/abandoned/blobs/uploads/?digest=${sha256("never sent whole")}`);
    await new Promise<void>((resolve) => {
      const req = http.request(url, { method: "POST", headers: { "Content-Length": "1048576" }, agent: false });
      req.on("error", () => resolve());
      req.on("close", () => resolve());
      req.write(randomBytes(1024), () => setTimeout(() => req.destroy(), 100));
    });
    const rec = await requestRecord(proc, "POST", url.pathname, 3_000);
    assert.equal(typeof rec.status, "number");
    const errors = proc.records().filter((r) => r.level === "error" && r.path === url.pathname);
    assert.deepEqual(errors, [], "a client that hangs up is not a server fault");
  });
});

describe("REGISTRY_LOG_FORMATTER=text", () => {
  after(stopAll);

  it("logs human lines instead of JSON", async () => {
    const proc = await startServerProcess(await makeTempDir("cli-text"), { REGISTRY_LOG_FORMATTER: "text" });
    await (await fetch(`${proc.url}/v2/`)).arrayBuffer();
    const line = await proc.waitFor(() => proc.lines().find((l) => / request /.test(l)), 5_000, "the text request line");
    assert.equal(proc.records().length, 0, `no line may be JSON:\n${proc.stdout}`);
    assert.match(proc.lines()[0], /^\d{4}-\d\d-\d\dT\S+ INFO +listening .*port=\d+/);
    assert.match(line, /^\S+ INFO +request .*method=GET path=\/v2\/ status=200 /);
  });
});
