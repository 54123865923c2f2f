// Starts a real registry server on an ephemeral loopback port over a fresh temporary directory.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config";
import { silentLogger } from "../../src/log";
import { createServer, RegistryServer } from "../../src/server";

export interface TestServer {
  url: string;
  root: string;
  server: RegistryServer;
  close(): Promise<void>;
}

export interface TestServerOptions {
  deleteEnabled?: boolean;
  /** Reuse a storage directory (restart tests); it is then not removed on close. */
  root?: string;
  env?: Record<string, string>;
}

export async function startServer(options: TestServerOptions = {}): Promise<TestServer> {
  const root = options.root ?? (await mkdtemp(join(tmpdir(), "registry-test-")));
  const config = loadConfig({
    REGISTRY_HTTP_ADDR: "127.0.0.1:0",
    REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: root,
    REGISTRY_STORAGE_DELETE_ENABLED: String(options.deleteEnabled ?? true),
    REGISTRY_HTTP_DRAINTIMEOUT: "2s",
    ...options.env,
  });
  const server = await createServer(config, silentLogger);
  const addr = await server.listen();
  return {
    url: `http://127.0.0.1:${addr.port}`,
    root,
    server,
    close: async () => {
      await server.close();
      if (!options.root) await rm(root, { recursive: true, force: true });
    },
  };
}
