// The HTTP application: one request listener that matches a route, runs its handler, renders
// every error in one place, answers CORS, and writes one log line per request.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { errorBody, RegistryError, volumeFullError } from "../errors";
import { StorageFullError } from "../storage/driver";
import { API_VERSION_HEADER, AppServices, RequestContext } from "./context";
import { match } from "./router";

export interface RequestObserver {
  /** Called once per finished request (metrics). */
  (info: { route: string; method: string; status: number; bytesIn: number; bytesOut: number; durationMs: number }): void;
}

const CORS_EXPOSE = "Docker-Content-Digest, Docker-Distribution-API-Version, Link, Location, Range, Docker-Upload-UUID, OCI-Subject, OCI-Filters-Applied";

function toRegistryError(err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  if (err instanceof StorageFullError) return volumeFullError();
  return new RegistryError("INTERNAL");
}

function sendError(res: ServerResponse, err: RegistryError, method: string | undefined): void {
  const body = Buffer.from(errorBody(err));
  res.writeHead(err.status, { ...err.headers, "Content-Type": "application/json", "Content-Length": String(body.length) });
  res.end(method === "HEAD" ? undefined : body);
}

export function createRequestListener(services: AppServices, observe?: RequestObserver) {
  const { config, log } = services;
  const corsHeaders = {
    "Access-Control-Allow-Origin": config.http.corsOrigin,
    "Access-Control-Expose-Headers": CORS_EXPOSE,
  };

  const socketTotals = new WeakMap<Socket, { read: number; written: number }>();

  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = process.hrtime.bigint();
    const socket = req.socket;
    const rawUrl = req.url ?? "/";
    const q = rawUrl.indexOf("?");
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const method = req.method ?? "GET";
    let route = "unknown";
    for (const [k, v] of Object.entries(API_VERSION_HEADER)) res.setHeader(k, v);
    for (const [k, v] of Object.entries(corsHeaders)) res.setHeader(k, v);

    // "close" fires for finished and abandoned responses alike: one log line per request.
    res.once("close", () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      // A keep-alive socket carries several requests: count from where the previous one ended.
      const previous = socketTotals.get(socket) ?? { read: 0, written: 0 };
      const totals = { read: socket.bytesRead, written: socket.bytesWritten };
      socketTotals.set(socket, totals);
      const bytesIn = totals.read - previous.read;
      const bytesOut = totals.written - previous.written;
      const aborted = !res.writableFinished;
      observe?.({ route, method, status: res.statusCode, bytesIn, bytesOut, durationMs });
      if (log.enabled("info")) {
        const fields = { method, path, status: res.statusCode, route, bytesIn, bytesOut, durationMs: Math.round(durationMs * 100) / 100 };
        log.info("request", aborted ? { ...fields, aborted: true } : fields);
      }
    });

    try {
      if (method === "OPTIONS") {
        // CORS preflight: never needs credentials.
        res.writeHead(204, {
          "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
          "Access-Control-Allow-Headers": "Authorization, Accept, Content-Type, Content-Range, Range",
          "Access-Control-Max-Age": "600",
          "Content-Length": "0",
        });
        res.end();
        return;
      }
      const found = match(method, path);
      route = found.route;
      const ctx: RequestContext = {
        req,
        res,
        path,
        query: new URLSearchParams(q < 0 ? "" : rawUrl.slice(q + 1)),
        params: found.params,
        ...services,
      };
      await found.handler(ctx);
    } catch (err) {
      // A client that went away mid-request is not a server fault: nothing to answer or report.
      if (req.readableAborted || res.destroyed || (err as NodeJS.ErrnoException).code === "ECONNRESET" || (err instanceof Error && err.message === "aborted")) {
        res.destroy();
        return;
      }
      const regErr = toRegistryError(err);
      if (regErr.status >= 500) log.error("request failed", { method, path, error: err instanceof Error ? err.stack ?? err.message : String(err) });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // Discard what the handler left unread, so the client gets the answer on a usable connection.
      if (!req.complete) req.resume();
      sendError(res, regErr, method);
    }
  };
}
