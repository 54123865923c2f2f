// Two server processes over one storage directory, as during a rolling update when the old and
// the new pod overlap on one volume: what either accepted, both serve; listings agree; an upload
// session begun on one is finished on the other.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { imageManifest, OCI_MANIFEST, pushBlob, putManifest, sha256 } from "../helpers/registry";
import { makeTempDir, ServerProcess, startServerProcess, stopAll } from "./proc";
import { completeUpload, expectBlob, expectManifest, getJson, patchChunk, startUpload } from "./registry-io";

interface PushedBlob {
  repo: string;
  content: Buffer;
}

interface PushedManifest {
  repo: string;
  tag: string;
  content: Buffer;
}

async function expectPushed(base: string, manifest: PushedManifest): Promise<void> {
  const res = await putManifest(base, manifest.repo, manifest.tag, manifest.content, OCI_MANIFEST);
  assert.equal(res.status, 201, `PUT ${manifest.repo}:${manifest.tag} on ${base}: ${await res.text()}`);
}

describe("two processes on one storage directory", () => {
  let a: ServerProcess;
  let b: ServerProcess;
  const blobs: PushedBlob[] = [];
  const manifests: PushedManifest[] = [];

  before(async () => {
    const root = await makeTempDir("two");
    [a, b] = await Promise.all([startServerProcess(root), startServerProcess(root)]);
  });
  after(stopAll);

  it("accepts blobs and manifests pushed concurrently through both, including the same blob to both at once", async () => {
    const servers = [a.url, b.url];
    // Each process caches the catalog; prime both caches so a stale one would show below.
    for (const base of servers) await getJson(`${base}/v2/_catalog`);

    const repos = ["two/alpha", "two/beta", "two/shared"];
    const own = Array.from({ length: 24 }, (_, i) => ({ repo: repos[i % 3], content: randomBytes(16 * 1024 + i * 9_000) }));
    const same = Array.from({ length: 6 }, (_, i) => ({ repo: "two/shared", content: randomBytes(200 * 1024 + i) }));
    await Promise.all([
      ...own.map((blob, i) => pushBlob(servers[i % 2], blob.repo, blob.content)),
      ...same.flatMap((blob) => servers.map((base) => pushBlob(base, blob.repo, blob.content))),
    ]);
    blobs.push(...own, ...same);

    // Tags in one repository from both processes, each image with its own config.
    const configs = Array.from({ length: 16 }, (_, i) => Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", image: i })));
    await Promise.all(configs.map((config, i) => pushBlob(servers[i % 2], "two/shared", config)));
    blobs.push(...configs.map((content) => ({ repo: "two/shared", content })));
    const tagged = configs.map((config, i) => ({ repo: "two/shared", tag: `v${i}`, content: imageManifest(config, [same[i % same.length].content]) }));
    const firsts = ["two/alpha", "two/beta"].map((repo) => {
      const config = own.find((x) => x.repo === repo)?.content ?? Buffer.alloc(0);
      const layers = own.filter((x) => x.repo === repo && x.content !== config).map((x) => x.content);
      return { repo, tag: "latest", content: imageManifest(config, layers) };
    });
    await Promise.all([...tagged, ...firsts].map((m, i) => expectPushed(servers[i % 2], m)));
    manifests.push(...tagged, ...firsts);
  });

  it("serves every blob and manifest byte-identical through each process", async () => {
    assert.ok(manifests.length > 0, "the push test ran");
    for (const base of [a.url, b.url]) {
      await Promise.all(blobs.map((blob) => expectBlob(base, blob.repo, blob.content)));
      await Promise.all(manifests.map((m) => expectManifest(base, m.repo, m.tag, m.content)));
      await Promise.all(manifests.map((m) => expectManifest(base, m.repo, sha256(m.content), m.content)));
    }
  });

  it("answers the same catalog and tag lists from both processes", async () => {
    assert.ok(manifests.length > 0, "the push test ran");
    const expectedTags = manifests
      .filter((m) => m.repo === "two/shared")
      .map((m) => m.tag)
      .sort();
    for (const base of [a.url, b.url]) {
      assert.deepEqual(await getJson(`${base}/v2/_catalog`), { repositories: ["two/alpha", "two/beta", "two/shared"] }, `catalog of ${base}`);
      assert.deepEqual(await getJson(`${base}/v2/two/shared/tags/list`), { name: "two/shared", tags: expectedTags }, `tags of ${base}`);
    }
  });

  it("settles one tag pushed with different manifests through both at once to the same answer on both", async () => {
    const [x, y] = [0, 1].map((i) => imageManifest(blobs[blobs.length - 1].content, [], { annotations: { pushedBy: String(i) } }));
    await Promise.all([expectPushed(a.url, { repo: "two/shared", tag: "race", content: x }), expectPushed(b.url, { repo: "two/shared", tag: "race", content: y })]);
    const answers = await Promise.all([a.url, b.url].map(async (base) => (await fetch(`${base}/v2/two/shared/manifests/race`, { method: "HEAD" })).headers.get("docker-content-digest")));
    assert.equal(answers[0], answers[1]);
    assert.ok([sha256(x), sha256(y)].includes(answers[0] ?? ""), `race resolves to ${answers[0]}`);
  });

  it("lists a repository pushed through one process in the other's catalog as soon as the push is answered, while that catalog is busy", async () => {
    let flooding = true;
    const flood = Array.from({ length: 4 }, async () => {
      while (flooding) await getJson(`${a.url}/v2/_catalog`);
    });
    const stale: string[] = [];
    try {
      const config = Buffer.from("{}");
      // Two pushers, so that one repository appears while the catalog walk for the other runs.
      await Promise.all(
        [0, 1].map(async (pusher) => {
          for (let i = 0; i < 15; i++) {
            const repo = `two/fresh-${pusher}-${String(i).padStart(2, "0")}`;
            await pushBlob(b.url, repo, config);
            await expectPushed(b.url, { repo, tag: "latest", content: imageManifest(config, []) });
            const { repositories } = await getJson<{ repositories: string[] }>(`${a.url}/v2/_catalog`);
            if (!repositories.includes(repo)) stale.push(repo);
          }
        }),
      );
    } finally {
      flooding = false;
      await Promise.all(flood);
    }
    assert.deepEqual(stale, [], "repositories missing from a catalog asked after their push was answered");
  });

  it("completes on one process a chunked upload begun on the other", async () => {
    const content = randomBytes(3 * 256 * 1024 + 17);
    const [c1, c2] = [content.subarray(0, 256 * 1024), content.subarray(256 * 1024)];
    const location = await startUpload(a.url, "two/chunked");
    assert.equal(await patchChunk(a.url, location, c1, 0), `0-${c1.length - 1}`);
    // b holds no hash state for the session: it must rehash what a wrote.
    const res = await completeUpload(b.url, location, sha256(content), c2);
    assert.equal(res.status, 201, await res.text());
    await expectBlob(a.url, "two/chunked", content);
    await expectBlob(b.url, "two/chunked", content);
  });

  it("rehashes a large session from disk on the other process, and refuses it under a wrong digest", async () => {
    // Past the staging-slot size: read back direct, through the downloads' buffers.
    const content = randomBytes(3 * 1024 * 1024 + 4099);
    const wrong = await startUpload(a.url, "two/rehash");
    await patchChunk(a.url, wrong, content, 0);
    const refused = await completeUpload(b.url, wrong, sha256(Buffer.from("something else")), Buffer.alloc(0));
    assert.equal(refused.status, 400);
    assert.equal(((await refused.json()) as { errors: { code: string }[] }).errors[0].code, "DIGEST_INVALID");
    const right = await startUpload(a.url, "two/rehash");
    await patchChunk(a.url, right, content.subarray(0, content.length - 1), 0);
    const res = await completeUpload(b.url, right, sha256(content), content.subarray(content.length - 1));
    assert.equal(res.status, 201, await res.text());
    await expectBlob(a.url, "two/rehash", content);
  });

  it("completes a chunked upload whose chunks alternate between the processes", async () => {
    const content = randomBytes(5 * 100_000);
    const chunks = [0, 1, 2, 3, 4].map((i) => content.subarray(i * 100_000, (i + 1) * 100_000));
    const location = await startUpload(a.url, "two/alternating");
    // a keeps a hash state for the session after its PATCH; b's PATCH makes that state stale,
    // so a must notice and rehash when it completes.
    for (let i = 0; i < 4; i++) {
      const status = await fetch(new URL(location, [a.url, b.url][(i + 1) % 2]));
      assert.equal(status.headers.get("range"), `0-${Math.max(i * 100_000 - 1, 0)}`, `upload status before chunk ${i}`);
      await patchChunk([a.url, b.url][i % 2], location, chunks[i], i * 100_000);
    }
    const res = await completeUpload(a.url, location, sha256(content), chunks[4]);
    assert.equal(res.status, 201, await res.text());
    await expectBlob(b.url, "two/alternating", content);
  });
});
