#!/usr/bin/env node
// Entry point: `registry-server [serve]`. Configuration errors are one plain line and exit 2.
import "./threadpool";
import { Config, ConfigError, loadConfig } from "./config";
import { createLogger, Logger } from "./log";
import { createServer } from "./server";
import { gcCommand } from "./cli/gc";
import { fsckCommand, FsckUsageError } from "./cli/fsck";

const USAGE = "usage: registry-server [serve | gc [--dry-run] [--json] [--local] | fsck [--repair] [--json]]";

async function serve(config: Config, log: Logger): Promise<void> {
  const server = await createServer(config, log);
  const addr = await server.listen();
  log.info("listening", { address: addr.address, port: addr.port, root: config.storage.rootDirectory, deleteEnabled: config.storage.deleteEnabled });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("shutting down", { signal });
    void server.close().then(() => {
      log.info("stopped");
      process.exit(0);
    });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

async function main(argv: string[]): Promise<number> {
  const [command = "serve", ...rest] = argv;
  let config: Config;
  try {
    config = loadConfig(process.env, { isTty: process.stdout.isTTY === true });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`registry-server: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(config.log.level, config.log.format);
  switch (command) {
    case "serve":
      if (rest.length > 0) break;
      await serve(config, log);
      return -1;
    case "gc":
      try {
        return await gcCommand(config, rest);
      } catch (err) {
        process.stderr.write(`registry-server gc: ${err instanceof Error ? err.message : String(err)}\n`);
        return err instanceof Error && err.message.startsWith("unknown option") ? 2 : 1;
      }
    case "fsck":
      try {
        return await fsckCommand(config, rest);
      } catch (err) {
        process.stderr.write(`registry-server fsck: ${err instanceof Error ? err.message : String(err)}\n`);
        return err instanceof FsckUsageError ? 2 : 1;
      }
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE + "\n");
      return 0;
  }
  process.stderr.write(`registry-server: unknown command ${JSON.stringify([command, ...rest].join(" "))}; ${USAGE}\n`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    const e = err as NodeJS.ErrnoException;
    // System errors at startup (port taken, unwritable or looping directory) are one plain line.
    if (e && typeof e.code === "string" && typeof e.syscall === "string") {
      process.stderr.write(`registry-server: ${e.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`registry-server: ${e instanceof Error ? e.stack : String(err)}\n`);
    process.exit(1);
  },
);
