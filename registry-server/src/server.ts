// createServer builds the whole registry (storage, domain, HTTP) without listening; only the
// entry point listens. No module-level state: tests start as many as they like.
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { Config } from "./config";
import { createRequestListener, RequestObserver } from "./http/app";
import type { Logger } from "./log";
import { Maintenance } from "./maintenance";
import { RegistryMetrics } from "./metrics";
import { Registry } from "./registry/registry";
import { StorageUsage } from "./registry/usage";
import { FilesystemDriver, STALE_TEMPORARY_MS } from "./storage/filesystem";


export interface RegistryServer {
  readonly http: http.Server;
  readonly registry: Registry;
  readonly maintenance: Maintenance;
  readonly usage: StorageUsage;
  /** Absent when REGISTRY_METRICS_ENABLED=false. */
  readonly metrics?: RegistryMetrics;
  /** Starts listening on the configured address; resolves with the bound port. */
  listen(): Promise<AddressInfo>;
  /** Stops accepting, lets in-flight requests finish (up to the drain timeout), then closes. */
  close(): Promise<void>;
}

export interface ServerOptions {
  observe?: RequestObserver;
}

export async function createServer(config: Config, log: Logger, options: ServerOptions = {}): Promise<RegistryServer> {
  const driver = new FilesystemDriver(config.storage.rootDirectory);
  await driver.init();
  if (!driver.synchronousLookups) log.info("storage is not on a local file system: every lookup goes through the thread pool", { root: config.storage.rootDirectory });
  const stale = await driver.cleanTemporaries(STALE_TEMPORARY_MS);
  if (stale > 0) log.info("removed stale temporary files", { count: stale });
  const usage = new StorageUsage(driver, config.storage);
  const registry = new Registry(driver, { capacity: usage.check, blobListener: usage });
  // The first walk of the store's blobs (one stat per blob) runs while the server answers: on a
  // store of 60,000 blobs it held the first answer on /v2/ back for 4 s. Whatever needs the totals
  // (quota checks, scrapes, the summary) refreshes first, and so waits for this walk.
  usage.refresh().then(
    () => log.debug("storage usage", { ...usage.totals(), quotaBytes: config.storage.quotaBytes, minFreeBytes: config.storage.minFreeBytes }),
    (err: unknown) => log.warn("storage usage walk failed", { error: err instanceof Error ? err.message : String(err) }),
  );
  const maintenance = new Maintenance(registry, config, log);
  maintenance.onGc(() => {
    usage.refresh().catch((err: unknown) => log.warn("storage usage refresh failed", { error: err instanceof Error ? err.message : String(err) }));
  });
  const metrics = config.metrics.enabled ? new RegistryMetrics(registry, usage) : undefined;
  if (metrics) maintenance.onGc(metrics.observeGc);
  const observers = [metrics?.observeRequest, options.observe].filter((o): o is RequestObserver => o !== undefined);
  const observe: RequestObserver = (info) => observers.forEach((o) => o(info));

  const listener = createRequestListener({ registry, config, log, maintenance, usage, metrics }, observe);
  // No limit on a whole request (a multi-GiB push may take long), but a connection that sends or
  // reads nothing for REGISTRY_HTTP_IDLETIMEOUT is dropped: a stalled upload must not hold its session.
  const server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000, keepAlive: true }, (req, res) => {
    void listener(req, res);
  });
  server.setTimeout(config.http.idleTimeoutMs, (socket) => socket.destroy());

  return {
    http: server,
    registry,
    maintenance,
    usage,
    metrics,
    listen: () =>
      new Promise<AddressInfo>((resolve, reject) => {
        server.once("error", reject);
        server.listen(config.http.port, config.http.host || undefined, () => {
          server.off("error", reject);
          maintenance.start();
          resolve(server.address() as AddressInfo);
        });
      }),
    close: () =>
      new Promise<void>((resolve) => {
        maintenance.stop();
        if (!server.listening) {
          resolve();
          return;
        }
        const idle = setInterval(() => server.closeIdleConnections(), 100);
        const force = setTimeout(() => server.closeAllConnections(), config.http.drainTimeoutMs);
        server.close(() => {
          clearInterval(idle);
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
