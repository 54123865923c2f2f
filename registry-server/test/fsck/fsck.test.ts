// fsck over a real store: images pushed through a running server, then damaged on disk the way
// a bad disk, a crash or a careless hand would, then checked in-process and through the CLI.
import { afterEach, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fsck, FsckFinding, FsckReport } from "../../src/registry/fsck";
import { Registry } from "../../src/registry/registry";
import { FilesystemDriver } from "../../src/storage/filesystem";
import { descriptor, OCI_MANIFEST, pushImage, PushedImage, sha256 } from "../helpers/registry";
import { startServer, TestServer } from "../helpers/server";
import { describeRun, run, RunResult } from "../helpers/tools";

const MAIN = resolve(__dirname, "../../src/main.js");
const V2 = "docker/registry/v2";

let srv: TestServer;

beforeEach(async () => {
  srv = await startServer();
});
afterEach(async () => {
  await srv.close();
});

function blobDir(digest: string): string {
  const [alg, hex] = digest.split(":");
  return join(srv.root, V2, "blobs", alg, hex.slice(0, 2), hex);
}

function repoPath(repo: string, ...rest: string[]): string {
  return join(srv.root, V2, "repositories", repo, ...rest);
}

function revisionDir(repo: string, digest: string): string {
  return repoPath(repo, "_manifests/revisions", ...digest.split(":"));
}

/** Checks the store as the CLI does: a registry of its own over the same directory. */
function check(repair = false): Promise<FsckReport> {
  return fsck(new Registry(new FilesystemDriver(srv.root)), { repair });
}

/** `kind where` of each finding, sorted: what the tests compare. */
function summary(findings: FsckFinding[]): string[] {
  return findings.map((f) => `${f.kind} ${f.repo === undefined ? (f.digest ?? f.path) : f.tag !== undefined ? `${f.repo}:${f.tag}` : `${f.repo}@${f.digest}`}`).sort();
}

/** Every file below the root with the hash of its content. */
async function snapshot(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(srv.root, { recursive: true })) {
    const p = join(srv.root, entry);
    if ((await stat(p)).isFile()) out.set(entry, createHash("sha256").update(await readFile(p)).digest("hex"));
  }
  return out;
}

async function flipFirstByte(file: string): Promise<void> {
  const data = await readFile(file);
  data[0] ^= 0xff;
  await writeFile(file, data);
}

async function tagsOf(repo: string): Promise<string[]> {
  return ((await (await fetch(`${srv.url}/v2/${repo}/tags/list`)).json()) as { tags: string[] }).tags;
}

function fsckCli(args: string[], root = srv.root): Promise<RunResult> {
  return run(process.execPath, [MAIN, "fsck", ...args], { env: { PATH: process.env.PATH ?? "", REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root }, timeoutMs: 10_000 });
}

async function pushSha512Blob(repo: string, content: Buffer): Promise<string> {
  const digest = `sha512:${createHash("sha512").update(content).digest("hex")}`;
  const res = await fetch(`${srv.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: "POST", body: content });
  assert.equal(res.status, 201, await res.text());
  return digest;
}

const sizeOf = (img: PushedImage) => img.config.length + img.layer.length + img.manifest.length;

describe("fsck", () => {
  it("finds an undamaged store clean, with every blob hashed and every link, tag and referrer counted", async () => {
    const a = await pushImage(srv.url, "app", "v1");
    const b = await pushImage(srv.url, "team/tools", "latest");
    const sig = await pushImage(srv.url, "app", undefined, { subject: descriptor(OCI_MANIFEST, a.manifest), artifactType: "application/vnd.example.sig" });
    const big = randomBytes(3000);
    await pushSha512Blob("app", big);

    const r = await check();
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.warnings, []);
    assert.equal(r.ok, true);
    assert.deepEqual(r.checked, {
      blobs: 10,
      bytesHashed: sizeOf(a) + sizeOf(b) + sizeOf(sig) + big.length,
      repositories: 2,
      links: 10,
      layerLinks: 7,
      revisionLinks: 3,
      tags: 2,
      referrers: 1,
    });
  });

  it("reports each kind of damage, changes nothing without --repair, repairs it with --repair, and is then clean", async () => {
    const a = await pushImage(srv.url, "app", "a");
    const b = await pushImage(srv.url, "app", "b");
    const c = await pushImage(srv.url, "app", "c");
    const d = await pushImage(srv.url, "app", "d");
    const f = await pushImage(srv.url, "app", "f");
    const e = await pushImage(srv.url, "app", undefined, { subject: descriptor(OCI_MANIFEST, f.manifest) });
    const layerA = sha256(a.layer);
    const configC = sha256(c.config);

    await flipFirstByte(join(blobDir(layerA), "data")); // a bad disk
    await rm(join(blobDir(b.digest), "data")); // a blob's data gone
    await writeFile(repoPath("app", "_layers", ...configC.split(":"), "link"), sha256("something else")); // a link naming another digest
    await rm(revisionDir("app", d.digest), { recursive: true }); // tag d now points at nothing
    await rm(revisionDir("app", e.digest), { recursive: true }); // the referrer entry of e under f now lists nothing

    const expected = [
      `corrupt-blob ${layerA}`,
      `dangling-layer-link app@${layerA}`,
      `dangling-revision app@${b.digest}`,
      "dangling-tag app:b",
      `link-mismatch app@${configC}`,
      "dangling-tag app:d",
      `dangling-referrer app@${e.digest}`,
    ].sort();
    const before = await snapshot();
    const found = await check();
    assert.deepEqual(summary(found.problems), expected);
    assert.deepEqual(summary(found.warnings), [`incomplete-image app@${a.digest}`]);
    assert.equal(found.leftovers.emptyBlobDirectories, 1, "b's blob directory without data is a leftover, not a problem");
    assert.equal(found.ok, false);
    assert.ok(found.problems.every((p) => !p.repaired && p.repair !== "none"));
    assert.deepEqual(await snapshot(), before, "fsck without --repair changed the store");

    const repaired = await check(true);
    assert.deepEqual(summary(repaired.problems), expected);
    assert.ok(repaired.problems.every((p) => p.repaired && p.repairError === undefined), JSON.stringify(repaired.problems, null, 2));
    assert.equal(repaired.repaired, expected.length);
    assert.equal(repaired.ok, false);

    // The corrupt layer is in the quarantine, byte for byte; the broken entries are gone.
    const quarantine = repaired.quarantine;
    assert.ok(quarantine !== undefined && quarantine.startsWith("/quarantine/"), quarantine);
    const [alg, hex] = layerA.split(":");
    const quarantined = await readFile(join(srv.root, quarantine, "blobs", alg, hex.slice(0, 2), hex, "data"));
    assert.notEqual(sha256(quarantined), layerA);
    assert.equal(quarantined.length, a.layer.length);
    await assert.rejects(stat(blobDir(layerA)));
    await assert.rejects(stat(blobDir(b.digest)));
    assert.equal(await readFile(repoPath("app", "_layers", alg, configC.split(":")[1], "link"), "utf8"), configC);
    assert.deepEqual(await tagsOf("app"), ["a", "c", "f"]);
    const referrers = (await (await fetch(`${srv.url}/v2/app/referrers/${f.digest}`)).json()) as { manifests: unknown[] };
    assert.deepEqual(referrers.manifests, []);
    assert.equal((await fetch(`${srv.url}/v2/app/blobs/${configC}`)).status, 200);

    // What is left is a warning only: image a lacks the layer that was set aside.
    const after = await check();
    assert.deepEqual(after.problems, []);
    assert.equal(after.ok, true);
    assert.deepEqual(summary(after.warnings), [`incomplete-image app@${a.digest}`]);
  });

  it("sets aside a blob stored under the wrong prefix and rewrites a missing referrer entry", async () => {
    const f = await pushImage(srv.url, "app", "f");
    const e = await pushImage(srv.url, "app", undefined, { subject: descriptor(OCI_MANIFEST, f.manifest) });
    const stray = sha256("stray");
    const [, hex] = stray.split(":");
    const wrongPrefix = hex.slice(0, 2) === "00" ? "01" : "00";
    await mkdir(join(srv.root, V2, "blobs/sha256", wrongPrefix, hex), { recursive: true });
    await writeFile(join(srv.root, V2, "blobs/sha256", wrongPrefix, hex, "data"), "stray");
    const entry = repoPath("app", "_referrers", ...f.digest.split(":"), `${e.digest.replace(":", "-")}.json`);
    const descriptorBefore = await readFile(entry, "utf8");
    await rm(entry);

    const found = await check();
    assert.deepEqual(summary(found.problems), [`misplaced-blob /${V2}/blobs/sha256/${wrongPrefix}/${hex}`, `missing-referrer app@${e.digest}`]);
    await check(true);
    assert.equal(await readFile(entry, "utf8"), descriptorBefore);
    assert.deepEqual((await check()).problems, []);
  });

  it("counts stale temporaries and lists upload sessions without reporting them as problems", async () => {
    const res = await fetch(`${srv.url}/v2/app/blobs/uploads/`, { method: "POST" });
    assert.equal(res.status, 202);
    // A session registry:2 left: a directory holding its data.
    const legacy = join(srv.root, "docker/registry/v2/repositories/old/_uploads/9a1d2c3b-4e5f-4a6b-8c7d-0e1f2a3b4c5d");
    await mkdir(legacy, { recursive: true });
    await writeFile(join(legacy, "data"), "partial");
    const tmp = join(srv.root, ".tmp");
    await writeFile(join(tmp, "old"), "x");
    await writeFile(join(tmp, "new"), "x");
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(join(tmp, "old"), twoHoursAgo, twoHoursAgo);

    const r = await check();
    assert.equal(r.ok, true);
    assert.equal(r.leftovers.staleTemporaries, 1);
    assert.deepEqual(
      r.leftovers.uploads.map((u) => [u.repo, u.bytes]).sort(),
      [
        ["app", 0],
        ["old", 7],
      ],
    );
  });
});

describe("registry-server fsck", () => {
  it("exits 0 when clean, 1 when damaged (also after --repair), 0 once repaired, and --json is one object", async () => {
    const img = await pushImage(srv.url, "app", "v1");
    const clean = await fsckCli([]);
    assert.equal(clean.code, 0, describeRun(clean));
    assert.match(clean.stdout, /3 blobs .* 1 repository, 3 links .* 1 tag/);
    assert.match(clean.stdout, /\nclean\n$/);

    await flipFirstByte(join(blobDir(sha256(img.layer)), "data"));
    const damaged = await fsckCli(["--json"]);
    assert.equal(damaged.code, 1, describeRun(damaged));
    assert.equal(damaged.stdout.trim().split("\n").length, 1);
    const report = JSON.parse(damaged.stdout) as FsckReport;
    assert.equal(report.ok, false);
    assert.equal(report.checked.blobs, 3);
    assert.deepEqual(report.problems.map((p) => p.kind).sort(), ["corrupt-blob", "dangling-layer-link"]);

    const repair = await fsckCli(["--repair"]);
    assert.equal(repair.code, 1, describeRun(repair));
    assert.match(repair.stdout, /problem corrupt-blob .*repaired/);
    assert.match(repair.stdout, /2 problems, 1 warning; repaired 2\n$/);

    const again = await fsckCli(["--json"]);
    assert.equal(again.code, 0, describeRun(again));
    assert.equal((JSON.parse(again.stdout) as FsckReport).ok, true);
  });

  it("exits 2 with one line for an unknown option or a storage root that is not there", async () => {
    for (const [args, root, pattern] of [
      [["--bogus"], srv.root, /^registry-server fsck: unknown option --bogus/],
      [[], join(srv.root, "nowhere"), /^registry-server fsck: storage root .*nowhere is not a directory/],
    ] as const) {
      const r = await fsckCli([...args], root);
      assert.equal(r.code, 2, describeRun(r));
      assert.equal(r.stdout, "");
      const lines = r.stderr.split("\n").filter((l) => l !== "");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], pattern);
    }
  });
});
