// A small registry client on node:http with a keep-alive agent: request bodies are streamed from
// generators with backpressure, response bodies are hashed or dropped as they arrive.
import * as http from "node:http";
import { createHash } from "node:crypto";
import { BigBlob, OCI_MANIFEST, payload, SmallImage } from "./payload";

const MANIFEST_ACCEPT = [OCI_MANIFEST, "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.v2+json"].join(", ");

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body, kept only when asked for (or for error answers, capped). */
  body: Buffer;
  bytes: number;
  /** sha256 of the body, when asked for. */
  digest?: string;
}

export interface RequestOptions {
  headers?: http.OutgoingHttpHeaders;
  body?: Buffer | Iterable<Buffer>;
  /** Content-Length of an iterable body. */
  bodyLength?: number;
  keepBody?: boolean;
  hashBody?: boolean;
  expect: number[];
}

const ERROR_BODY_LIMIT = 4096;

export class HttpError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    body: string,
  ) {
    super(`${method} ${path.slice(0, 120)} answered ${status}: ${body.slice(0, 300)}`);
    this.name = "HttpError";
  }
}

/** The path and query of a Location header (distribution answers absolute URLs). */
export function locationPath(reply: Reply, method: string, path: string): string {
  const location = reply.headers.location;
  if (!location) throw new HttpError(method, path, reply.status, "no Location header");
  const url = new URL(location, "http://registry.invalid");
  return url.pathname + url.search;
}

export function withQuery(path: string, params: Record<string, string>): string {
  const url = new URL(path, "http://registry.invalid");
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.pathname + url.search;
}

function waitDrain(req: http.ClientRequest): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      req.off("drain", done);
      req.off("close", done);
      req.off("error", fail);
      resolve();
    };
    const fail = (err: Error) => {
      req.off("drain", done);
      req.off("close", done);
      reject(err);
    };
    req.once("drain", done);
    req.once("close", done);
    req.once("error", fail);
  });
}

async function writeBody(req: http.ClientRequest, chunks: Iterable<Buffer>): Promise<void> {
  for (const chunk of chunks) {
    if (req.destroyed) return;
    if (!req.write(chunk)) await waitDrain(req);
  }
  req.end();
}

export class RegistryClient {
  private readonly agent: http.Agent;

  constructor(
    readonly host: string,
    readonly port: number,
    /** Connections at once, at most (requests beyond wait for one). */
    maxSockets = 64,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  }

  close(): void {
    this.agent.destroy();
  }

  request(method: string, path: string, options: RequestOptions): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = { ...options.headers };
      const body = options.body;
      if (body === undefined) {
        if (method === "PUT" || method === "POST" || method === "PATCH") headers["Content-Length"] = "0";
      } else {
        headers["Content-Length"] = String(Buffer.isBuffer(body) ? body.length : (options.bodyLength ?? 0));
      }
      const req = http.request({ host: this.host, port: this.port, method, path, headers, agent: this.agent }, (res) => {
        const status = res.statusCode ?? 0;
        const failed = !options.expect.includes(status);
        const hash = options.hashBody ? createHash("sha256") : undefined;
        const kept: Buffer[] = [];
        let bytes = 0;
        res.on("data", (chunk: Buffer) => {
          bytes += chunk.length;
          hash?.update(chunk);
          if (options.keepBody || (failed && bytes <= ERROR_BODY_LIMIT)) kept.push(chunk);
        });
        res.on("error", reject);
        res.on("end", () => {
          const reply: Reply = { status, headers: res.headers, body: Buffer.concat(kept), bytes, digest: hash ? `sha256:${hash.digest("hex")}` : undefined };
          if (failed) reject(new HttpError(method, path, status, reply.body.toString("utf8")));
          else resolve(reply);
        });
      });
      req.on("error", reject);
      if (body === undefined || Buffer.isBuffer(body)) req.end(body);
      else writeBody(req, body).catch(reject);
    });
  }

  // The registry operations the phases use.

  async startUpload(repo: string): Promise<string> {
    const path = `/v2/${repo}/blobs/uploads/`;
    return locationPath(await this.request("POST", path, { expect: [202] }), "POST", path);
  }

  /** POST, then PUT ?digest= with the whole body (what docker and containerd do). */
  async pushBlob(repo: string, digest: string, body: Buffer | Iterable<Buffer>, size: number): Promise<void> {
    const location = await this.startUpload(repo);
    await this.request("PUT", withQuery(location, { digest }), {
      body,
      bodyLength: size,
      headers: { "Content-Type": "application/octet-stream" },
      expect: [201],
    });
  }

  async pushImageBlobs(repo: string, image: SmallImage): Promise<void> {
    await this.pushBlob(repo, image.layerDigest, image.layer, image.layer.length);
    await this.pushBlob(repo, image.configDigest, image.config, image.config.length);
  }

  /**
   * POST, PATCHes of chunkBytes with Content-Range, then PUT ?digest=. The digest is known
   * beforehand, as a real client knows it (docker and containerd push layers they hold by digest):
   * hashing while sending would take a core from the server measured.
   */
  async pushChunked(repo: string, blob: BigBlob, chunkBytes: number): Promise<void> {
    let location = await this.startUpload(repo);
    for (let start = 0; start < blob.size; start += chunkBytes) {
      const end = Math.min(blob.size, start + chunkBytes);
      const reply = await this.request("PATCH", location, {
        body: payload(blob.id, start, end),
        bodyLength: end - start,
        headers: { "Content-Type": "application/octet-stream", "Content-Range": `${start}-${end - 1}` },
        expect: [202],
      });
      location = locationPath(reply, "PATCH", location);
    }
    await this.request("PUT", withQuery(location, { digest: blob.digest }), { expect: [201] });
  }

  /** Links a blob of another repository; uploads it when the registry does not mount. */
  async mountBlob(repo: string, digest: string, from: string, body: Buffer): Promise<void> {
    const path = withQuery(`/v2/${repo}/blobs/uploads/`, { mount: digest, from });
    const reply = await this.request("POST", path, { expect: [201, 202] });
    if (reply.status === 202) {
      await this.request("PUT", withQuery(locationPath(reply, "POST", path), { digest }), { body, expect: [201] });
    }
  }

  /** GETs a blob and checks its sha256 and length; answers the bytes received. */
  async pullBlob(repo: string, digest: string, size: number): Promise<number> {
    const path = `/v2/${repo}/blobs/${digest}`;
    const reply = await this.request("GET", path, { hashBody: true, expect: [200] });
    if (reply.digest !== digest || reply.bytes !== size) {
      throw new HttpError("GET", path, reply.status, `body has ${reply.bytes} bytes and digest ${reply.digest ?? "?"}, expected ${size} and ${digest}`);
    }
    return reply.bytes;
  }

  async putManifest(repo: string, reference: string, body: Buffer): Promise<void> {
    await this.request("PUT", `/v2/${repo}/manifests/${reference}`, { body, headers: { "Content-Type": OCI_MANIFEST }, expect: [201] });
  }

  /** GET (body hashed and checked) or HEAD of a manifest; checks Docker-Content-Digest. */
  async fetchManifest(method: "GET" | "HEAD", repo: string, reference: string, digest: string): Promise<void> {
    const path = `/v2/${repo}/manifests/${reference}`;
    const reply = await this.request(method, path, { headers: { Accept: MANIFEST_ACCEPT }, hashBody: method === "GET", expect: [200] });
    const header = reply.headers["docker-content-digest"];
    if (header !== digest || (method === "GET" && reply.digest !== digest)) {
      throw new HttpError(method, path, reply.status, `digest header ${String(header)}, body ${reply.digest ?? "-"}, expected ${digest}`);
    }
  }

  /** GET of a JSON listing; answers the parsed body and the next page's path (Link rel="next"). */
  async getListing(path: string): Promise<{ body: unknown; next?: string }> {
    const reply = await this.request("GET", path, { keepBody: true, expect: [200] });
    const header = reply.headers.link;
    const link = Array.isArray(header) ? header.join(", ") : header;
    const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
    const next = m ? new URL(m[1], "http://registry.invalid") : undefined;
    return { body: JSON.parse(reply.body.toString("utf8")) as unknown, next: next ? next.pathname + next.search : undefined };
  }
}

/** Runs fn(0..count-1) with at most `concurrency` in flight; stops handing out work after a failure. */
export async function pool(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < count) {
      const i = next++;
      try {
        await fn(i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}
