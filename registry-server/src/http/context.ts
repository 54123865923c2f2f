// What every handler receives, and the small helpers they share to read requests and answer.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Config } from "../config";
import { RegistryError } from "../errors";
import type { Logger } from "../log";
import { parseRepoName } from "../reference";
import type { Maintenance } from "../maintenance";
import type { RegistryMetrics } from "../metrics";
import type { Registry } from "../registry/registry";
import type { StorageUsage } from "../registry/usage";
import { requestMemory, SMALL_BODY_BYTES } from "../util/memory-budget";

export interface RouteParams {
  name?: string;
  reference?: string;
  digest?: string;
  uuid?: string;
}

/** What the HTTP layer is built from. */
export interface AppServices {
  registry: Registry;
  config: Config;
  log: Logger;
  maintenance: Maintenance;
  usage: StorageUsage;
  /** Absent when metrics are disabled. */
  metrics?: RegistryMetrics;
}

export interface RequestContext extends AppServices {
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  query: URLSearchParams;
  params: RouteParams;
}

export type Handler = (ctx: RequestContext) => Promise<void>;

export const API_VERSION_HEADER = { "Docker-Distribution-API-Version": "registry/2.0" };

/** The repository name of the route, validated. */
export function repoName(ctx: RequestContext): string {
  return parseRepoName(ctx.params.name ?? "");
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}, contentType = "application/json"): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { ...headers, "Content-Type": contentType, "Content-Length": String(payload.length) });
  res.end(payload);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, "Content-Length": "0" });
  res.end();
}

/** Declared Content-Length, or undefined for a chunked body. */
export function contentLength(req: IncomingMessage): number | undefined {
  const v = req.headers["content-length"];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new RegistryError("SIZE_INVALID", "invalid Content-Length");
  return n;
}

/**
 * The request body as chunks. A consumer that stops early (a write that failed: volume full)
 * leaves the socket open, so the error can still be answered; app.ts discards the rest.
 */
export function requestBody(req: IncomingMessage): AsyncIterable<Buffer> {
  return req.iterator({ destroyOnReturn: false });
}

/**
 * Reads a body whole (manifests), refusing more than `limit` bytes with 413, and hands it to
 * `use`. A body larger than SMALL_BODY_BYTES first waits for its room in the request memory
 * budget (its declared length, or `limit` when it has none), which it keeps until `use` is done.
 */
export async function withBody<T>(req: IncomingMessage, limit: number, use: (body: Buffer) => Promise<T>): Promise<T> {
  const tooLarge = () => new RegistryError("SIZE_INVALID", `body exceeds ${limit} bytes`, { limit }, { status: 413, headers: { Connection: "close" } });
  const declared = contentLength(req);
  if (declared !== undefined && declared > limit) throw tooLarge();
  let reserved = declared !== undefined && declared > SMALL_BODY_BYTES ? await requestMemory.take(declared) : 0;
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of requestBody(req)) {
      total += chunk.length;
      if (total > limit) throw tooLarge();
      // Of no stated length and past the small size: room for the most it may bring.
      if (reserved === 0 && total > SMALL_BODY_BYTES) reserved = await requestMemory.take(limit);
      chunks.push(chunk);
    }
    return await use(Buffer.concat(chunks, total));
  } finally {
    requestMemory.give(reserved);
  }
}

/** `n` and `last` of the paginated listings (distribution-spec "Listing Tags"). */
export function pagination(query: URLSearchParams): { n: number | undefined; last: string | undefined } {
  const rawN = query.get("n");
  let n: number | undefined;
  if (rawN !== null && rawN !== "") {
    if (!/^\d{1,9}$/.test(rawN)) throw new RegistryError("PAGINATION_NUMBER_INVALID", "n must be a non-negative integer", { n: rawN.slice(0, 50) });
    n = Number(rawN);
  }
  const last = query.get("last") ?? undefined;
  return { n, last: last === "" ? undefined : last };
}

/** RFC 5988 link to the next page of a listing. */
export function nextLink(path: string, query: Record<string, string>): string {
  return `<${path}?${new URLSearchParams(query).toString()}>; rel="next"`;
}
