// Graceful shutdown as Kubernetes drives it: SIGTERM, then the drain timeout, then SIGKILL.
// An upload already in flight must be answered; nothing half-written may stay behind.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import * as http from "node:http";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { sha256 } from "../helpers/registry";
import { makeTempDir, startServerProcess, stopAll, withTimeout } from "./proc";
import { expectBlob } from "./registry-io";

/** The response, or status 0 and the error of a request the server cut. */
interface UploadOutcome {
  status: number;
  body: string;
}

/**
 * A monolithic blob upload whose body goes out in `pieces` parts `gapMs` apart; `onPiece(i)`
 * runs after part i is written.
 */
function slowUpload(base: string, repo: string, content: Buffer, pieces: number, gapMs: number, onPiece: (i: number) => void): Promise<UploadOutcome> {
  const url = new URL(`${base}/v2/${repo}/blobs/uploads/?digest=${sha256(content)}`);
  return new Promise<UploadOutcome>((resolve) => {
    const fail = (err: Error): void => resolve({ status: 0, body: err.message });
    const headers = { "Content-Length": String(content.length), "Content-Type": "application/octet-stream" };
    const req = http.request(url, { method: "POST", headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", fail);
    });
    req.on("error", fail);
    const size = Math.ceil(content.length / pieces);
    let i = 0;
    const next = (): void => {
      if (req.destroyed) return;
      req.write(content.subarray(i * size, (i + 1) * size));
      onPiece(i);
      i++;
      if (i < pieces) setTimeout(next, gapMs);
      else req.end();
    };
    next();
  });
}

describe("graceful shutdown", () => {
  after(stopAll);

  it("SIGTERM lets an in-flight upload finish, refuses new connections, exits 0, and the blob survives a restart", async () => {
    const root = await makeTempDir("shutdown");
    const proc = await startServerProcess(root, { REGISTRY_HTTP_DRAINTIMEOUT: "10s" });
    const blob = randomBytes(2 * 1024 * 1024);
    let signalledAt = 0;
    let probe: Promise<string> | undefined;
    const upload = slowUpload(proc.url, "drain/app", blob, 10, 100, (i) => {
      if (i === 2) {
        proc.signal("SIGTERM");
        signalledAt = Date.now();
      }
      // A pod being terminated is out of the Service: a new connection must not be served.
      if (i === 5) {
        probe = fetch(`${proc.url}/v2/`, { signal: AbortSignal.timeout(2_000) }).then(
          (r) => `served with ${r.status}`,
          () => "refused",
        );
      }
    });

    const res = await withTimeout(upload, 8_000, "the slow upload");
    assert.equal(res.status, 201, `upload answered ${res.status} ${res.body}\n${proc.describe()}`);
    const status = await proc.waitForExit(10_000);
    assert.deepEqual(status, { code: 0, signal: null }, proc.describe());
    assert.ok(Date.now() - signalledAt < 10_000, "exited within the drain timeout");
    assert.equal(await withTimeout(probe ?? Promise.resolve("not sent"), 3_000, "the probe"), "refused", "a connection made while draining");
    assert.ok(
      proc.records().some((r) => r.msg === "shutting down" && r.signal === "SIGTERM"),
      proc.stdout,
    );

    const restarted = await startServerProcess(root);
    await expectBlob(restarted.url, "drain/app", blob);
    assert.deepEqual(await readdir(path.join(root, ".tmp")), [], "temporaries left behind");
  });

  it("an upload still running when the drain timeout passes is cut, and the process exits 0 on time", async () => {
    const root = await makeTempDir("shutdown-cut");
    const proc = await startServerProcess(root, { REGISTRY_HTTP_DRAINTIMEOUT: "500ms" });
    const blob = randomBytes(1024 * 1024);
    let signalledAt = 0;
    const upload = slowUpload(proc.url, "drain/cut", blob, 40, 100, (i) => {
      if (i === 1) {
        proc.signal("SIGTERM");
        signalledAt = Date.now();
      }
    });
    const status = await proc.waitForExit(3_000);
    const elapsed = Date.now() - signalledAt;
    assert.deepEqual(status, { code: 0, signal: null }, proc.describe());
    assert.ok(elapsed >= 400 && elapsed < 2_000, `exited ${elapsed} ms after SIGTERM with a 500 ms drain timeout`);
    assert.equal((await withTimeout(upload, 3_000, "the cut upload")).status, 0, "the cut upload got no answer");

    const restarted = await startServerProcess(root);
    const res = await fetch(`${restarted.url}/v2/drain/cut/blobs/${sha256(blob)}`, { method: "HEAD" });
    assert.equal(res.status, 404, "a blob whose upload was cut is not served");
    assert.deepEqual(await readdir(path.join(root, ".tmp")), [], "temporaries left behind");
  });

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`${signal} on an idle server exits 0 within 2 s, even with a keep-alive connection open`, async () => {
      const proc = await startServerProcess(await makeTempDir("shutdown-idle"));
      const res = await fetch(`${proc.url}/v2/`);
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      proc.signal(signal);
      assert.deepEqual(await proc.waitForExit(2_000), { code: 0, signal: null }, proc.describe());
    });
  }
});
