import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startServer, TestServer } from "../helpers/server";
import { errorCode, imageManifest, OCI_INDEX, OCI_MANIFEST, pushBlob, pushImage, putManifest, sha256 } from "../helpers/registry";

let srv: TestServer;
before(async () => {
  srv = await startServer();
});
after(async () => {
  await srv.close();
});

async function getJson<T>(path: string): Promise<{ res: Response; body: T }> {
  const res = await fetch(`${srv.url}${path}`);
  return { res, body: (await res.json()) as T };
}

describe("GET /v2/<name>/tags/list", () => {
  const tags = ["v1", "v10", "v2", "latest", "A", "_x", "1.0", "b-c"];
  before(async () => {
    const img = await pushImage(srv.url, "paged", undefined);
    for (const tag of tags) {
      const res = await putManifest(srv.url, "paged", tag, img.manifest, OCI_MANIFEST);
      assert.equal(res.status, 201);
    }
  });

  it("lists every tag in lexical order", async () => {
    const { res, body } = await getJson<{ name: string; tags: string[] }>("/v2/paged/tags/list");
    assert.equal(res.status, 200);
    assert.deepEqual(body, { name: "paged", tags: [...tags].sort() });
    assert.equal(res.headers.get("link"), null);
  });

  it("pages with n and last, with a Link to the next page", async () => {
    const sorted = [...tags].sort();
    const seen: string[] = [];
    let path: string | undefined = "/v2/paged/tags/list?n=3";
    let pages = 0;
    while (path) {
      const { res, body }: { res: Response; body: { tags: string[] } } = await getJson<{ tags: string[] }>(path);
      assert.ok(body.tags.length <= 3);
      seen.push(...body.tags);
      const link = res.headers.get("link");
      path = link ? /^<([^>]+)>; rel="next"$/.exec(link)?.[1] : undefined;
      pages++;
    }
    assert.deepEqual(seen, sorted);
    assert.equal(pages, 3);
  });

  it("treats last as exclusive, even when it is not a tag", async () => {
    const { body } = await getJson<{ tags: string[] }>("/v2/paged/tags/list?last=v1");
    assert.deepEqual(body.tags, ["v10", "v2"]);
    const { body: b2 } = await getJson<{ tags: string[] }>("/v2/paged/tags/list?n=2&last=c");
    assert.deepEqual(b2.tags, ["latest", "v1"]);
  });

  it("n=0 answers an empty list", async () => {
    const { res, body } = await getJson<{ tags: string[] }>("/v2/paged/tags/list?n=0");
    assert.equal(res.status, 200);
    assert.deepEqual(body.tags, []);
  });

  it("rejects an n that is not a number", async () => {
    const res = await fetch(`${srv.url}/v2/paged/tags/list?n=-1`);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), "PAGINATION_NUMBER_INVALID");
  });

  it("answers 404 NAME_UNKNOWN for a repository that does not exist", async () => {
    const res = await fetch(`${srv.url}/v2/nothing-here/tags/list`);
    assert.equal(res.status, 404);
    assert.equal(await errorCode(res), "NAME_UNKNOWN");
  });

  it("answers an empty list for a repository with only untagged manifests", async () => {
    await pushImage(srv.url, "untagged", undefined);
    const { res, body } = await getJson<{ name: string; tags: string[] }>("/v2/untagged/tags/list");
    assert.equal(res.status, 200);
    assert.deepEqual(body, { name: "untagged", tags: [] });
  });
});

describe("tags/list with a second server on the same store", () => {
  it("sees tags added and removed through the other server once its list was cached", async () => {
    const a = await startServer();
    const b = await startServer({ root: a.root });
    try {
      const img = await pushImage(a.url, "shared-tags", "one");
      const tagsVia = async (url: string) => ((await (await fetch(`${url}/v2/shared-tags/tags/list`)).json()) as { tags: string[] }).tags;
      assert.deepEqual(await tagsVia(b.url), ["one"]);
      // Past the settling time the list is served from memory until the directory changes.
      await new Promise((r) => setTimeout(r, 1100));
      assert.deepEqual(await tagsVia(b.url), ["one"]);
      assert.deepEqual(await tagsVia(b.url), ["one"]);
      assert.equal((await putManifest(a.url, "shared-tags", "two", img.manifest, OCI_MANIFEST)).status, 201);
      assert.deepEqual(await tagsVia(b.url), ["one", "two"]);
      await new Promise((r) => setTimeout(r, 1100));
      assert.deepEqual(await tagsVia(b.url), ["one", "two"]);
      assert.equal((await fetch(`${a.url}/v2/shared-tags/manifests/one`, { method: "DELETE" })).status, 202);
      assert.deepEqual(await tagsVia(b.url), ["two"]);
    } finally {
      await b.close();
      await a.close();
    }
  });
});

describe("GET /v2/_catalog", () => {
  const repos = ["cat/a", "cat/b", "cat/b/c", "cat-z", "zeta", "alpha/one"];
  let local: TestServer;
  before(async () => {
    local = await startServer();
    for (const repo of repos) await pushImage(local.url, repo, "v1");
    // Blobs alone do not make a repository appear.
    await pushBlob(local.url, "blobs-only", Buffer.from("x"));
  });
  after(async () => {
    await local.close();
  });

  it("lists repositories with manifests, sorted", async () => {
    const res = await fetch(`${local.url}/v2/_catalog`);
    assert.deepEqual(await res.json(), { repositories: [...repos].sort() });
  });

  it("pages with n, last and Link", async () => {
    const seen: string[] = [];
    let path: string | undefined = "/v2/_catalog?n=4";
    while (path) {
      const res: Response = await fetch(`${local.url}${path}`);
      const body = (await res.json()) as { repositories: string[] };
      seen.push(...body.repositories);
      const link = res.headers.get("link");
      path = link ? /^<([^>]+)>; rel="next"$/.exec(link)?.[1] : undefined;
    }
    assert.deepEqual(seen, [...repos].sort());
  });

  it("a repository whose every manifest is deleted leaves the catalog, and comes back when pushed again", async () => {
    const img = await pushImage(local.url, "ephemeral", "v1");
    assert.ok(((await (await fetch(`${local.url}/v2/_catalog`)).json()) as { repositories: string[] }).repositories.includes("ephemeral"));
    const del = await fetch(`${local.url}/v2/ephemeral/manifests/${img.digest}`, { method: "DELETE" });
    assert.equal(del.status, 202);
    const after1 = (await (await fetch(`${local.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.ok(!after1.repositories.includes("ephemeral"));
    await pushImage(local.url, "ephemeral", "v2");
    const after2 = (await (await fetch(`${local.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.ok(after2.repositories.includes("ephemeral"));
  });
});

describe("GET /v2/<name>/referrers/<digest>", () => {
  let subject: { digest: string; manifest: Buffer };
  const config = Buffer.from("{}");
  const sbomLayer = Buffer.from("sbom");
  const sigLayer = Buffer.from("sig");

  before(async () => {
    subject = await pushImage(srv.url, "refs", "v1");
    for (const b of [config, sbomLayer, sigLayer]) await pushBlob(srv.url, "refs", b);
  });

  async function pushReferrer(artifactType: string, layer: Buffer, annotations?: Record<string, string>): Promise<string> {
    const body = imageManifest(config, [layer], {
      artifactType,
      configMediaType: "application/vnd.oci.empty.v1+json",
      subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifest.length },
      annotations,
    });
    const res = await putManifest(srv.url, "refs", sha256(body), body, OCI_MANIFEST);
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("oci-subject"), subject.digest);
    return sha256(body);
  }

  it("answers an empty index (200) when there are no referrers", async () => {
    const res = await fetch(`${srv.url}/v2/refs/referrers/${sha256("no referrers")}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), OCI_INDEX);
    assert.deepEqual(await res.json(), { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
  });

  it("lists referrers with artifactType and annotations, and filters by artifactType", async () => {
    const sbom = await pushReferrer("application/vnd.example.sbom", sbomLayer, { "org.example.kind": "sbom" });
    const sig = await pushReferrer("application/vnd.example.sig", sigLayer);
    const res = await fetch(`${srv.url}/v2/refs/referrers/${subject.digest}`);
    const body = (await res.json()) as { manifests: { digest: string; artifactType: string; annotations?: Record<string, string>; mediaType: string; size: number }[] };
    assert.equal(res.headers.get("oci-filters-applied"), null);
    assert.deepEqual(body.manifests.map((m) => m.digest).sort(), [sbom, sig].sort());
    const sbomEntry = body.manifests.find((m) => m.digest === sbom);
    assert.equal(sbomEntry?.artifactType, "application/vnd.example.sbom");
    assert.deepEqual(sbomEntry?.annotations, { "org.example.kind": "sbom" });
    assert.equal(sbomEntry?.mediaType, OCI_MANIFEST);

    const filtered = await fetch(`${srv.url}/v2/refs/referrers/${subject.digest}?artifactType=application/vnd.example.sig`);
    assert.equal(filtered.headers.get("oci-filters-applied"), "artifactType");
    const fbody = (await filtered.json()) as { manifests: { digest: string }[] };
    assert.deepEqual(
      fbody.manifests.map((m) => m.digest),
      [sig],
    );
  });

  it("uses the config media type as artifactType when the manifest has none", async () => {
    const cfg = Buffer.from('{"kind":"cfg"}');
    await pushBlob(srv.url, "refs", cfg);
    const body = imageManifest(cfg, [sigLayer], {
      configMediaType: "application/vnd.example.config.v1+json",
      subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifest.length },
    });
    const put = await putManifest(srv.url, "refs", "with-config-type", body, OCI_MANIFEST);
    assert.equal(put.status, 201);
    const res = await fetch(`${srv.url}/v2/refs/referrers/${subject.digest}?artifactType=application/vnd.example.config.v1%2Bjson`);
    const list = (await res.json()) as { manifests: { digest: string }[] };
    assert.deepEqual(
      list.manifests.map((m) => m.digest),
      [sha256(body)],
    );
  });

  it("pages large answers with n, last and a Link to the next page", async () => {
    const digests: string[] = [];
    for (let i = 0; i < 5; i++) digests.push(await pushReferrer("application/vnd.example.page", sbomLayer, { page: String(i) }));
    const seen: string[] = [];
    let path: string | undefined = `/v2/refs/referrers/${subject.digest}?artifactType=application/vnd.example.page&n=2`;
    let pages = 0;
    while (path) {
      const res: Response = await fetch(`${srv.url}${path}`);
      const body = (await res.json()) as { manifests: { digest: string }[] };
      assert.ok(body.manifests.length <= 2);
      seen.push(...body.manifests.map((m) => m.digest));
      const link = res.headers.get("link");
      path = link ? /^<([^>]+)>; rel="next"$/.exec(link)?.[1] : undefined;
      if (path) assert.match(path, /artifactType=application%2Fvnd\.example\.page/);
      pages++;
    }
    assert.equal(pages, 3);
    assert.deepEqual(seen, [...digests].sort());
  });

  it("a deleted referrer disappears from the list", async () => {
    const gone = await pushReferrer("application/vnd.example.temp", sbomLayer, { temp: "1" });
    const del = await fetch(`${srv.url}/v2/refs/manifests/${gone}`, { method: "DELETE" });
    assert.equal(del.status, 202);
    const res = await fetch(`${srv.url}/v2/refs/referrers/${subject.digest}?artifactType=application/vnd.example.temp`);
    assert.deepEqual(((await res.json()) as { manifests: unknown[] }).manifests, []);
  });

  it("rejects an invalid digest with 400 DIGEST_INVALID", async () => {
    const res = await fetch(`${srv.url}/v2/refs/referrers/sha256:nothex`);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), "DIGEST_INVALID");
  });
});
