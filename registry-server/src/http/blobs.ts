// /v2/<name>/blobs/<digest>: GET (with Range), HEAD, DELETE.
import { RegistryError } from "../errors";
import { Digest } from "../reference";
import { ifExists } from "../storage/driver";
import { Handler, repoName, sendEmpty } from "./context";
import { requireDeleteEnabled } from "./policy";

export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a single `Range: bytes=a-b | a- | -n` against the blob size. Undefined means "serve
 * everything" (no header, or a form we do not serve partially, like multiple ranges); "invalid"
 * means the range cannot be satisfied (416).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined | "invalid" {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0) return "invalid";
    start = Math.max(size - suffix, 0);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return "invalid";
  return { start, end };
}

export const getBlob: Handler = async (ctx) => {
  const repo = repoName(ctx);
  const digest = Digest.parse(ctx.params.digest ?? "");
  const unknown = () => new RegistryError("BLOB_UNKNOWN", undefined, { digest: digest.toString() });
  if (!(await ctx.registry.blobs.isLinked(repo, digest))) throw unknown();
  // A GET opens the data first and takes its size from it (no separate stat, no window between
  // the two); a HEAD only needs the size. Missing here: deleted since (garbage collection).
  const head = ctx.req.method === "HEAD";
  const source = head ? undefined : await ifExists(ctx.registry.blobs.open(digest));
  if (!head && !source) throw unknown();
  try {
    const size = source?.size ?? (await ctx.registry.blobs.size(digest));
    if (size === undefined) throw unknown();
    const headers: Record<string, string> = {
      "Content-Type": "application/octet-stream",
      "Docker-Content-Digest": digest.toString(),
      "Accept-Ranges": "bytes",
      ETag: `"${digest.toString()}"`,
      "Cache-Control": "max-age=31536000",
    };
    const range = parseRange(ctx.req.headers.range, size);
    if (range === "invalid") {
      throw new RegistryError("RANGE_INVALID", "requested range not satisfiable", { size }, { headers: { "Content-Range": `bytes */${size}` } });
    }
    let status = 200;
    let start = 0;
    let end = size - 1;
    if (range) {
      status = 206;
      ({ start, end } = range);
      headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
    }
    headers["Content-Length"] = String(size === 0 ? 0 : end - start + 1);
    ctx.res.writeHead(status, headers);
    if (!source || size === 0) {
      ctx.res.end();
      return;
    }
    try {
      await source.sendTo(ctx.res, start, end);
      if (!ctx.res.destroyed) ctx.res.end();
    } catch (err) {
      // A client that goes away mid-download is not a server fault.
      if (!ctx.res.destroyed && !ctx.req.destroyed) throw err;
    }
  } finally {
    await source?.close();
  }
};

export const deleteBlob: Handler = async (ctx) => {
  requireDeleteEnabled(ctx);
  const repo = repoName(ctx);
  const digest = Digest.parse(ctx.params.digest ?? "");
  if (!(await ctx.registry.blobs.unlink(repo, digest))) throw new RegistryError("BLOB_UNKNOWN", undefined, { digest: digest.toString() });
  sendEmpty(ctx.res, 202, { "Docker-Content-Digest": digest.toString() });
};
