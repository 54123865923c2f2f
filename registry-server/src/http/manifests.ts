// /v2/<name>/manifests/<reference>: GET, HEAD, PUT, DELETE (by digest: the manifest and its
// tags; by tag: only the tag).
import { MAX_MANIFEST_BYTES } from "../registry/manifests";
import { parseReference } from "../reference";
import { Handler, repoName, sendEmpty, withBody } from "./context";
import { requireDeleteEnabled } from "./policy";

export const getManifest: Handler = async (ctx) => {
  const repo = repoName(ctx);
  const ref = parseReference(ctx.params.reference ?? "", "MANIFEST_UNKNOWN");
  const m = await ctx.registry.manifests.get(repo, ref);
  // The stored type is answered even when Accept excludes it: containerd and docker check the
  // type themselves, and a 404 here (distribution 2.8) breaks pulls of OCI indexes.
  ctx.res.writeHead(200, {
    "Content-Type": m.mediaType,
    "Content-Length": String(m.content.length),
    "Docker-Content-Digest": m.digest.toString(),
    ETag: `"${m.digest.toString()}"`,
  });
  ctx.res.end(ctx.req.method === "HEAD" ? undefined : m.content);
};

export const putManifest: Handler = async (ctx) => {
  const repo = repoName(ctx);
  const ref = parseReference(ctx.params.reference ?? "", "MANIFEST_INVALID");
  const { digest, subject } = await withBody(ctx.req, MAX_MANIFEST_BYTES, (body) => ctx.registry.manifests.put(repo, ref, body, ctx.req.headers["content-type"]));
  const headers: Record<string, string> = { Location: `/v2/${repo}/manifests/${digest.toString()}`, "Docker-Content-Digest": digest.toString() };
  if (subject) headers["OCI-Subject"] = subject.toString();
  sendEmpty(ctx.res, 201, headers);
};

export const deleteManifest: Handler = async (ctx) => {
  requireDeleteEnabled(ctx);
  const repo = repoName(ctx);
  const ref = parseReference(ctx.params.reference ?? "", "MANIFEST_UNKNOWN");
  if (ref.kind === "tag") await ctx.registry.manifests.deleteTag(repo, ref.tag);
  else await ctx.registry.manifests.delete(repo, ref.digest);
  sendEmpty(ctx.res, 202);
};
