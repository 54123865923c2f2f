// /v2/<name>/blobs/uploads/[<uuid>]: start (incl. monolithic POST and cross-repository mount),
// PATCH chunks (with Content-Range, or streamed without), PUT to complete, GET status, DELETE.
import { RegistryError } from "../errors";
import { Digest, parseRepoName } from "../reference";
import { rangeHeader } from "../registry/uploads";
import { contentLength, Handler, RequestContext, repoName, requestBody, sendEmpty } from "./context";

function uploadLocation(repo: string, id: string): string {
  return `/v2/${repo}/blobs/uploads/${id}`;
}

function sessionHeaders(repo: string, id: string, size: number): Record<string, string> {
  return { Location: uploadLocation(repo, id), Range: rangeHeader(size), "Docker-Upload-UUID": id };
}

function blobCreated(ctx: RequestContext, repo: string, digest: Digest): void {
  sendEmpty(ctx.res, 201, { Location: `/v2/${repo}/blobs/${digest.toString()}`, "Docker-Content-Digest": digest.toString() });
}

/** `Content-Range: <start>-<end>` (the spec's form; `bytes a-b/total` is accepted too). */
export function parseContentRange(header: string | undefined): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m || Number(m[2]) < Number(m[1])) throw new RegistryError("RANGE_INVALID", "invalid Content-Range", { contentRange: header.slice(0, 100) });
  return { start: Number(m[1]), end: Number(m[2]) };
}

/** The start offset a chunk claims, checked against its length. */
function chunkStart(ctx: RequestContext, length: number | undefined): number | undefined {
  const range = parseContentRange(ctx.req.headers["content-range"]);
  if (!range) return undefined;
  if (length !== undefined && length !== range.end - range.start + 1) {
    throw new RegistryError("RANGE_INVALID", "Content-Range does not match Content-Length", { contentRange: ctx.req.headers["content-range"], contentLength: length });
  }
  return range.start;
}

function requireDigest(ctx: RequestContext): Digest {
  const value = ctx.query.get("digest");
  if (!value) throw new RegistryError("DIGEST_INVALID", "the digest query parameter is required");
  return Digest.parse(value);
}

export const startUpload: Handler = async (ctx) => {
  const repo = repoName(ctx);
  const { registry } = ctx;
  const mount = ctx.query.get("mount");
  if (mount) {
    const digest = Digest.parse(mount);
    const from = ctx.query.get("from");
    // With `from`, the blob must be linked there; without it, any blob in the store will do
    // (distribution-spec "automatic content discovery"), unless that is switched off.
    const source = from ? parseRepoName(from) : undefined;
    const mountable = source ? await registry.blobs.isLinked(source, digest) : ctx.config.automaticCrossMount;
    if (mountable && (await registry.blobs.mount(repo, digest))) {
      blobCreated(ctx, repo, digest);
      return;
    }
  }
  const monolithic = ctx.query.get("digest");
  if (monolithic) {
    const digest = Digest.parse(monolithic);
    const id = await registry.uploads.create(repo);
    try {
      await registry.uploads.complete(repo, id, digest, requestBody(ctx.req), contentLength(ctx.req));
    } catch (err) {
      // The client never learnt this session's id: nothing can resume it, so free its space now.
      await registry.uploads.cancel(repo, id).catch(() => undefined);
      throw err;
    }
    blobCreated(ctx, repo, digest);
    return;
  }
  const id = await registry.uploads.create(repo);
  sendEmpty(ctx.res, 202, sessionHeaders(repo, id, 0));
};

export const uploadStatus: Handler = async (ctx) => {
  const repo = repoName(ctx);
  const id = ctx.params.uuid ?? "";
  const size = await ctx.registry.uploads.size(repo, id);
  sendEmpty(ctx.res, 204, sessionHeaders(repo, id, size));
};

export const patchUpload: Handler = async (ctx) => {
  const repo = repoName(ctx);
  const id = ctx.params.uuid ?? "";
  const length = contentLength(ctx.req);
  const start = chunkStart(ctx, length);
  const size = await ctx.registry.uploads.append(repo, id, requestBody(ctx.req), length, { start });
  sendEmpty(ctx.res, 202, sessionHeaders(repo, id, size));
};

export const completeUpload: Handler = async (ctx) => {
  const repo = repoName(ctx);
  const id = ctx.params.uuid ?? "";
  const digest = requireDigest(ctx);
  const length = contentLength(ctx.req);
  const start = chunkStart(ctx, length);
  await ctx.registry.uploads.complete(repo, id, digest, requestBody(ctx.req), length, { start });
  blobCreated(ctx, repo, digest);
};

export const cancelUpload: Handler = async (ctx) => {
  // Cancelling an upload frees what it wrote; it deletes nothing stored, so it is always allowed.
  const repo = repoName(ctx);
  await ctx.registry.uploads.cancel(repo, ctx.params.uuid ?? "");
  sendEmpty(ctx.res, 204);
};
