// createServer builds the whole registry (storage, domain, HTTP) without listening; only the
// entry point listens. No module-level state: tests start as many as they like.
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { Config } from "./config";
import { createRequestListener, RequestObserver } from "./http/app";
import type { Logger } from "./log";
import { Maintenance } from "./maintenance";
import { Registry } from "./registry/registry";
import { FilesystemDriver } from "./storage/filesystem";

/** Temporaries older than this are left over from a crash and removed at start. */
const STALE_TEMPORARY_MS = 60 * 60 * 1000;

export interface RegistryServer {
  readonly http: http.Server;
  readonly registry: Registry;
  readonly maintenance: Maintenance;
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
  const stale = await driver.cleanTemporaries(STALE_TEMPORARY_MS);
  if (stale > 0) log.info("removed stale temporary files", { count: stale });
  const registry = new Registry(driver);
  const maintenance = new Maintenance(registry, config, log);

  const listener = createRequestListener({ registry, config, log, maintenance }, options.observe);
  const server = http.createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 65_000 }, (req, res) => {
    void listener(req, res);
  });

  return {
    http: server,
    registry,
    maintenance,
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
