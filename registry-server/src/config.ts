// Configuration from the environment, under the names registry:2 reads
// (REGISTRY_<section>_<key>), so swapping images needs no change to a Deployment's env.

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "json" | "text";

export interface Config {
  http: { host: string; port: number; drainTimeoutMs: number; corsOrigin: string };
  storage: { rootDirectory: string; deleteEnabled: boolean };
  log: { level: LogLevel; format: LogFormat };
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

export type Env = Record<string, string | undefined>;

export function parseAddr(value: string, name: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${name}=${JSON.stringify(value)} is not an address like :5000 or 127.0.0.1:5000`);
  return { host: m[1] ?? m[2] ?? "", port };
}

export function parseBool(value: string | undefined, name: string, fallback: boolean): boolean {
  if (value === undefined || value.trim() === "") return fallback;
  const v = value.trim().toLowerCase();
  if (["true", "1", "yes", "on"].includes(v)) return true;
  if (["false", "0", "no", "off"].includes(v)) return false;
  throw new ConfigError(`${name}=${JSON.stringify(value)} must be true or false`);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Go-style durations as registry:2 writes them: 500ms, 30s, 5m, 1h30m, 7d. */
export function parseDuration(value: string | undefined, name: string, fallbackMs: number): number {
  if (value === undefined || value.trim() === "") return fallbackMs;
  const v = value.trim();
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]];
    consumed = re.lastIndex;
  }
  if (consumed !== v.length || consumed === 0) throw new ConfigError(`${name}=${JSON.stringify(value)} is not a duration like 30s, 5m or 1h`);
  return total;
}

function oneOf<T extends string>(value: string | undefined, name: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined || value.trim() === "") return fallback;
  const v = value.trim().toLowerCase();
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw new ConfigError(`${name}=${JSON.stringify(value)} must be one of ${allowed.join(", ")}`);
}

export function loadConfig(env: Env, defaults: { rootDirectory?: string; isTty?: boolean } = {}): Config {
  const addr = parseAddr(env.REGISTRY_HTTP_ADDR ?? ":5000", "REGISTRY_HTTP_ADDR");
  const rootDirectory = env.REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY ?? defaults.rootDirectory ?? "/var/lib/registry";
  if (rootDirectory.trim() === "") throw new ConfigError("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY must not be empty");
  return {
    http: {
      ...addr,
      drainTimeoutMs: parseDuration(env.REGISTRY_HTTP_DRAINTIMEOUT, "REGISTRY_HTTP_DRAINTIMEOUT", 25_000),
      corsOrigin: env.REGISTRY_HTTP_CORS_ORIGIN ?? "*",
    },
    storage: {
      rootDirectory,
      deleteEnabled: parseBool(env.REGISTRY_STORAGE_DELETE_ENABLED, "REGISTRY_STORAGE_DELETE_ENABLED", true),
    },
    log: {
      level: oneOf(env.REGISTRY_LOG_LEVEL, "REGISTRY_LOG_LEVEL", ["debug", "info", "warn", "error"] as const, "info"),
      format: oneOf(env.REGISTRY_LOG_FORMATTER, "REGISTRY_LOG_FORMATTER", ["json", "text"] as const, defaults.isTty ? "text" : "json"),
    },
  };
}
