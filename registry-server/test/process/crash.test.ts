// SIGKILL in the middle of many pushes (an OOM kill, a node lost): after a restart on the same
// directory, everything the registry acknowledged is there intact, and nothing it serves is a
// half-written file under a digest it does not match.
import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { mkdir, readdir, utimes, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { imageManifest, OCI_MANIFEST, pushBlob, putManifest, sha256 } from "../helpers/registry";
import { makeTempDir, runToExit, serverEnv, startServerProcess, stopAll, withTimeout } from "./proc";
import { corruptStoredBlobs, expectBlob, expectManifest } from "./registry-io";

const MiB = 1024 * 1024;
const PUSHERS = 20;
const ROUNDS = 4;
/** Manifests acknowledged before the kill: some images are complete, many pushes still in flight. */
const KILL_AFTER_MANIFESTS = 8;

describe("a crash during pushes", () => {
  after(stopAll);

  it("after SIGKILL during concurrent pushes, a restart serves every acknowledged blob and manifest intact and no blob mismatches its digest", async () => {
    const root = await makeTempDir("crash");
    const proc = await startServerProcess(root);
    const blobs: { repo: string; content: Buffer }[] = [];
    const manifests: { repo: string; tag: string; content: Buffer }[] = [];

    const pusher = async (p: number): Promise<void> => {
      const repo = `crash/r${p % 4}`;
      for (let round = 0; round < ROUNDS && !proc.hasExited; round++) {
        const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", pusher: p, round }));
        const layer = randomBytes(MiB + randomInt(3 * MiB));
        await pushBlob(proc.url, repo, config);
        blobs.push({ repo, content: config });
        await pushBlob(proc.url, repo, layer);
        blobs.push({ repo, content: layer });
        const manifest = imageManifest(config, [layer]);
        const res = await putManifest(proc.url, repo, `p${p}-${round}`, manifest, OCI_MANIFEST);
        if (res.status !== 201) throw new Error(`manifest push answered ${res.status}`);
        manifests.push({ repo, tag: `p${p}-${round}`, content: manifest });
        if (manifests.length === KILL_AFTER_MANIFESTS) proc.signal("SIGKILL");
      }
    };
    const outcomes = await withTimeout(Promise.allSettled(Array.from({ length: PUSHERS }, (_, p) => pusher(p))), 30_000, "the pushers");
    assert.deepEqual(await proc.waitForExit(5_000), { code: null, signal: "SIGKILL" });
    assert.ok(
      outcomes.some((o) => o.status === "rejected"),
      "the kill landed while pushes were in flight",
    );
    assert.ok(manifests.length >= KILL_AFTER_MANIFESTS && blobs.length >= 2 * KILL_AFTER_MANIFESTS, `${manifests.length} manifests, ${blobs.length} blobs acknowledged`);

    const restarted = await startServerProcess(root);
    for (const blob of blobs) await expectBlob(restarted.url, blob.repo, blob.content);
    for (const m of manifests) {
      await expectManifest(restarted.url, m.repo, m.tag, m.content);
      await expectManifest(restarted.url, m.repo, sha256(m.content), m.content);
    }
    assert.deepEqual(await corruptStoredBlobs(root), [], "blobs whose content does not match their digest");

    // The store's own checker agrees: every blob hashes to its digest, every link resolves.
    const fsck = await runToExit(["fsck", "--json"], serverEnv(root));
    const report = JSON.parse(fsck.stdout) as { ok: boolean; problems: unknown[]; checked: { blobs: number } };
    assert.deepEqual(report.problems, [], fsck.stdout);
    assert.equal(report.ok, true);
    assert.equal(fsck.code, 0);
    assert.ok(report.checked.blobs >= blobs.length, `fsck checked ${report.checked.blobs} blobs`);
  });

  it("a restart removes temporaries older than an hour left by a crash, and keeps fresh ones another process may be writing", async () => {
    const root = await makeTempDir("crash-tmp");
    const tmp = path.join(root, ".tmp");
    await mkdir(tmp, { recursive: true });
    await writeFile(path.join(tmp, "left-by-a-crash"), randomBytes(1000));
    await writeFile(path.join(tmp, "being-written"), randomBytes(1000));
    const longAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(path.join(tmp, "left-by-a-crash"), longAgo, longAgo);
    const proc = await startServerProcess(root);
    assert.deepEqual(await readdir(tmp), ["being-written"]);
    assert.ok(
      proc.records().some((r) => r.msg === "removed stale temporary files" && r.count === 1),
      proc.stdout,
    );
  });
});
