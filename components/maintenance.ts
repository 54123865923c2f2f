// The typed config keys for the server's maintenance settings (garbage collection, retention,
// upload purging, capacity, log level) and the environment variables they set, in the names
// the server reads (see README "Keeping the store clean" and "Capacity").
import { requireMatch, requireRecord } from "./validation";

/** REGISTRY_LOG_LEVEL when neither `registry:logLevel` nor `registry:extraEnv` sets it. */
export const DEFAULT_LOG_LEVEL = "info";

/** Raw values of the typed keys `registry:<name>`, as config gives them; unset keys are undefined. */
export interface MaintenanceConfig {
    readonly gc?: unknown;
    readonly retention?: unknown;
    readonly uploadPurging?: unknown;
    readonly quota?: unknown;
    readonly minFree?: unknown;
    readonly logLevel?: unknown;
}

/** One environment variable and the config key (or key path) that set it. */
export interface KeyedEnvVar {
    readonly key: string;
    readonly name: string;
    readonly value: string;
}

/** Validates a config value at `key` and returns the variable's text. */
type Parse = (key: string, value: unknown) => string;

const DURATION = /^(\d+(\.\d+)?(ms|s|m|h|d))+$/;
const SIZE = /^\d+(\.\d+)?\s*(B|k|kb|m|mb|g|gb|t|tb|ki|kib|mi|mib|gi|gib|ti|tib)?$/i;
/** Repository name characters plus the server's glob wildcards `*`, `**` and `?`. */
const REPOSITORY_GLOB = /^[a-z0-9._\-/*?]+$/;
const LOG_LEVELS = ["debug", "info", "warn", "error"];

/** Numbers count as their decimal text: `pulumi config set --path` stores `0` or `5` as a number. */
function text(key: string, value: unknown, pattern: RegExp, what: string): string {
    const given = typeof value === "number" ? String(value) : value;
    if (typeof given !== "string") {
        throw new Error(`${key} must be ${what}, got ${JSON.stringify(value)}`);
    }
    requireMatch(key, given, pattern, what);
    return given;
}

const duration: Parse = (key, value) => value === "0" || value === 0
    ? "0"
    : text(key, value, DURATION, "a duration such as 30s, 6h, 7d or 1h30m (or \"0\")");

const size: Parse = (key, value) => text(key, value, SIZE, "a size such as 8GiB, 512MiB or a number of bytes");

const boolean: Parse = (key, value) => {
    if (typeof value !== "boolean") {
        throw new Error(`${key} must be true or false, got ${JSON.stringify(value)}`);
    }
    return String(value);
};

const logLevel: Parse = (key, value) => {
    if (typeof value !== "string" || !LOG_LEVELS.includes(value)) {
        throw new Error(`${key} must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(value)}`);
    }
    return value;
};

/** The object at `key` with only the `known` fields; an unknown one (a typo) is an error. */
function knownFields(key: string, value: unknown, known: readonly string[]): Record<string, unknown> {
    const given = requireRecord(key, value);
    const unknown = Object.keys(given).filter((field) => !known.includes(field));
    if (unknown.length > 0) {
        throw new Error(`${key} has unknown field ${unknown[0]} (known: ${known.join(", ")})`);
    }
    return given;
}

/** One retention policy, its fields checked and in the server's order, `olderThan` as text. */
function retentionPolicy(key: string, value: unknown): Record<string, string | number> {
    const given = knownFields(key, value, ["repositories", "keepLast", "keepTags", "olderThan"]);
    const policy: Record<string, string | number> = {
        repositories: text(`${key}.repositories`, given.repositories, REPOSITORY_GLOB,
            "a glob of repository names such as team/* or ** (a-z, 0-9, . _ - / * ?)"),
    };
    if (given.keepLast !== undefined) {
        if (typeof given.keepLast !== "number" || !Number.isInteger(given.keepLast) || given.keepLast < 0) {
            throw new Error(`${key}.keepLast must be an integer from 0 up, got ${JSON.stringify(given.keepLast)}`);
        }
        policy.keepLast = given.keepLast;
    }
    if (given.keepTags !== undefined) {
        if (typeof given.keepTags !== "string") {
            throw new Error(`${key}.keepTags must be a regular expression string, got ${JSON.stringify(given.keepTags)}`);
        }
        try {
            new RegExp(given.keepTags);
        } catch (error) {
            throw new Error(`${key}.keepTags is not a valid regular expression: ${(error as Error).message}`);
        }
        policy.keepTags = given.keepTags;
    }
    if (given.olderThan !== undefined) {
        policy.olderThan = duration(`${key}.olderThan`, given.olderThan);
    }
    if (policy.keepLast === undefined && policy.olderThan === undefined) {
        throw new Error(`${key} needs keepLast or olderThan, or it would never remove anything`);
    }
    return policy;
}

/** REGISTRY_RETENTION_POLICIES: the policies as compact JSON, under the server's field names. */
const retentionPolicies: Parse = (key, value) => {
    if (!Array.isArray(value)) {
        throw new Error(`${key} must be an array of policies, got ${JSON.stringify(value)}`);
    }
    return JSON.stringify(value.map((policy, i) => retentionPolicy(`${key}[${i}]`, policy)));
};

/** How a typed key becomes variables, given the key's name (`registry:gc`) and its value. */
type Setting = (key: string, value: unknown) => KeyedEnvVar[];

/** A key with a scalar value that sets one variable. */
const variable = (name: string, parse: Parse): Setting => (key, value) => [{ key, name, value: parse(key, value) }];

/** A key with an object value: each field that is set sets one variable. */
const object = (fields: Record<string, [name: string, parse: Parse]>): Setting => (key, value) => {
    const given = knownFields(key, value, Object.keys(fields));
    return Object.entries(fields)
        .filter(([field]) => given[field] !== undefined)
        .flatMap(([field, [name, parse]]) => variable(name, parse)(`${key}.${field}`, given[field]));
};

const SETTINGS: Record<keyof MaintenanceConfig, Setting> = {
    gc: object({
        interval: ["REGISTRY_GC_INTERVAL", duration],
        gracePeriod: ["REGISTRY_GC_GRACEPERIOD", duration],
        deleteUntagged: ["REGISTRY_GC_DELETEUNTAGGED", boolean],
    }),
    retention: variable("REGISTRY_RETENTION_POLICIES", retentionPolicies),
    uploadPurging: object({
        enabled: ["REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED", boolean],
        age: ["REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE", duration],
        interval: ["REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL", duration],
    }),
    quota: variable("REGISTRY_STORAGE_QUOTA", size),
    minFree: variable("REGISTRY_STORAGE_MINFREE", size),
    logLevel: variable("REGISTRY_LOG_LEVEL", logLevel),
};

/** The typed keys, in the order their variables appear in the container's environment. */
const MAINTENANCE_KEYS = Object.keys(SETTINGS) as (keyof MaintenanceConfig)[];

/**
 * Validates the typed keys and returns the variables they set. Unset keys and fields set
 * nothing, so the server's own defaults apply. Throws an Error naming the key on a bad value.
 */
export function maintenanceEnv(config: MaintenanceConfig): KeyedEnvVar[] {
    return MAINTENANCE_KEYS
        .filter((name) => config[name] !== undefined)
        .flatMap((name) => SETTINGS[name](`registry:${name}`, config[name]));
}

/**
 * The typed keys' variables followed by `registry:extraEnv`. A variable set both ways is an
 * error naming both, rather than one silently winning.
 */
export function withMaintenanceEnv(typed: readonly KeyedEnvVar[], extraEnv: Readonly<Record<string, string>>): Record<string, string> {
    const env: Record<string, string> = {};
    for (const { key, name, value } of typed) {
        if (Object.hasOwn(extraEnv, name)) {
            throw new Error(`${key} and registry:extraEnv.${name} both set ${name}: remove one of them`);
        }
        env[name] = value;
    }
    return { ...env, ...extraEnv };
}
