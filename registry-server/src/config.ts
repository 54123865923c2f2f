// Configuration from the environment, under the names registry:2 reads
// (REGISTRY_<section>_<key>), so swapping images needs no change to a Deployment's env.

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "json" | "text";

/** A retention rule for the repositories matching a glob (`*` within a path segment, `**` across). */
export interface RetentionPolicy {
  repositories: string;
  /** Keep the N most recently pushed tags. */
  keepLast?: number;
  /** Keep tags matching this regular expression. */
  keepTags?: string;
  /** Drop tags (not kept by the rules above) older than this many milliseconds. */
  olderThanMs?: number;
}

export interface Config {
  http: { host: string; port: number; drainTimeoutMs: number; idleTimeoutMs: number; corsOrigin: string };
  /** A mount without `from` links any blob in the store (distribution-spec "automatic content discovery"). */
  automaticCrossMount: boolean;
  storage: {
    rootDirectory: string;
    deleteEnabled: boolean;
    /** Refuse pushes beyond this many stored bytes (undefined: no quota). */
    quotaBytes?: number;
    /** Refuse pushes when the volume has less free space than this. */
    minFreeBytes: number;
  };
  maintenance: {
    uploadPurging: { enabled: boolean; ageMs: number; intervalMs: number };
    /** Online garbage collection every intervalMs (0: only on demand). */
    gc: { intervalMs: number; gracePeriodMs: number; deleteUntagged: boolean };
    retention: RetentionPolicy[];
  };
  metrics: { enabled: boolean };
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
  if (v === "0") return 0;
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

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12, ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3, ti: 1024 ** 4, tib: 1024 ** 4 };

/** Byte sizes: 1048576, 512MiB, 10Gi, 2GB. */
export function parseSize(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value.trim() === "") return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(value.trim());
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new ConfigError(`${name}=${JSON.stringify(value)} is not a size like 10GiB or 512MiB`);
  return Math.floor(Number(m[1]) * unit);
}

/** REGISTRY_RETENTION_POLICIES: a JSON array of {repositories, keepLast?, keepTags?, olderThan?}. */
export function parseRetention(value: string | undefined, name: string): RetentionPolicy[] {
  if (value === undefined || value.trim() === "") return [];
  let doc: unknown;
  try {
    doc = JSON.parse(value);
  } catch {
    throw new ConfigError(`${name} is not valid JSON (expected an array of {repositories, keepLast, keepTags, olderThan})`);
  }
  if (!Array.isArray(doc)) throw new ConfigError(`${name} must be a JSON array of policies`);
  return doc.map((p: unknown, i): RetentionPolicy => {
    const where = `${name}[${i}]`;
    if (typeof p !== "object" || p === null) throw new ConfigError(`${where} must be an object`);
    const { repositories, keepLast, keepTags, olderThan, ...rest } = p as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) throw new ConfigError(`${where} has unknown field ${unknown[0]} (known: repositories, keepLast, keepTags, olderThan)`);
    if (typeof repositories !== "string" || repositories === "") throw new ConfigError(`${where}.repositories must be a glob like "app/*"`);
    const policy: RetentionPolicy = { repositories };
    if (keepLast !== undefined) {
      if (typeof keepLast !== "number" || !Number.isInteger(keepLast) || keepLast < 0) throw new ConfigError(`${where}.keepLast must be a whole number`);
      policy.keepLast = keepLast;
    }
    if (keepTags !== undefined) {
      if (typeof keepTags !== "string") throw new ConfigError(`${where}.keepTags must be a regular expression string`);
      try {
        new RegExp(keepTags);
      } catch {
        throw new ConfigError(`${where}.keepTags is not a valid regular expression`);
      }
      policy.keepTags = keepTags;
    }
    if (olderThan !== undefined) {
      if (typeof olderThan !== "string") throw new ConfigError(`${where}.olderThan must be a duration like "7d"`);
      policy.olderThanMs = parseDuration(olderThan, `${where}.olderThan`, 0);
    }
    if (policy.keepLast === undefined && policy.olderThanMs === undefined) {
      throw new ConfigError(`${where} needs keepLast or olderThan, or it would never remove anything`);
    }
    return policy;
  });
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
      idleTimeoutMs: parseDuration(env.REGISTRY_HTTP_IDLETIMEOUT, "REGISTRY_HTTP_IDLETIMEOUT", 120_000),
      corsOrigin: env.REGISTRY_HTTP_CORS_ORIGIN ?? "*",
    },
    automaticCrossMount: parseBool(env.REGISTRY_AUTOMATIC_CROSSMOUNT, "REGISTRY_AUTOMATIC_CROSSMOUNT", true),
    storage: {
      rootDirectory,
      deleteEnabled: parseBool(env.REGISTRY_STORAGE_DELETE_ENABLED, "REGISTRY_STORAGE_DELETE_ENABLED", true),
      quotaBytes: parseSize(env.REGISTRY_STORAGE_QUOTA, "REGISTRY_STORAGE_QUOTA"),
      minFreeBytes: parseSize(env.REGISTRY_STORAGE_MINFREE, "REGISTRY_STORAGE_MINFREE") ?? 64 * 1024 * 1024,
    },
    maintenance: {
      uploadPurging: {
        enabled: parseBool(env.REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED, "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED", true),
        ageMs: parseDuration(env.REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE, "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE", 168 * 3_600_000),
        intervalMs: parseDuration(env.REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL, "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL", 24 * 3_600_000),
      },
      gc: {
        intervalMs: parseDuration(env.REGISTRY_GC_INTERVAL, "REGISTRY_GC_INTERVAL", 0),
        gracePeriodMs: parseDuration(env.REGISTRY_GC_GRACEPERIOD, "REGISTRY_GC_GRACEPERIOD", 3_600_000),
        deleteUntagged: parseBool(env.REGISTRY_GC_DELETEUNTAGGED, "REGISTRY_GC_DELETEUNTAGGED", true),
      },
      retention: parseRetention(env.REGISTRY_RETENTION_POLICIES, "REGISTRY_RETENTION_POLICIES"),
    },
    metrics: { enabled: parseBool(env.REGISTRY_METRICS_ENABLED, "REGISTRY_METRICS_ENABLED", true) },
    log: {
      level: oneOf(env.REGISTRY_LOG_LEVEL, "REGISTRY_LOG_LEVEL", ["debug", "info", "warn", "error"] as const, "info"),
      format: oneOf(env.REGISTRY_LOG_FORMATTER, "REGISTRY_LOG_FORMATTER", ["json", "text"] as const, defaults.isTty ? "text" : "json"),
    },
  };
}
