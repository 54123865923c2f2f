import { MaintenanceConfig, maintenanceEnv, withMaintenanceEnv } from "../components/maintenance";

/** The variables as a name → value map, for the cases where the setting key does not matter. */
const envOf = (config: MaintenanceConfig) => Object.fromEntries(maintenanceEnv(config).map((v) => [v.name, v.value]));

describe("maintenanceEnv", () => {
    test("sets nothing when no key is set, so the server's defaults apply", () => {
        expect(maintenanceEnv({})).toEqual([]);
    });

    test("maps every key and field to the server's variable, naming the key that set it", () => {
        expect(maintenanceEnv({
            gc: { interval: "6h", gracePeriod: "30m", deleteUntagged: false },
            retention: [{ repositories: "team/*", keepLast: 5, keepTags: "^v\\d" }],
            uploadPurging: { enabled: true, age: "72h", interval: "12h" },
            quota: "8GiB",
            minFree: "512MiB",
            logLevel: "debug",
        })).toEqual([
            { key: "registry:gc.interval", name: "REGISTRY_GC_INTERVAL", value: "6h" },
            { key: "registry:gc.gracePeriod", name: "REGISTRY_GC_GRACEPERIOD", value: "30m" },
            { key: "registry:gc.deleteUntagged", name: "REGISTRY_GC_DELETEUNTAGGED", value: "false" },
            { key: "registry:retention", name: "REGISTRY_RETENTION_POLICIES", value: '[{"repositories":"team/*","keepLast":5,"keepTags":"^v\\\\d"}]' },
            { key: "registry:uploadPurging.enabled", name: "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED", value: "true" },
            { key: "registry:uploadPurging.age", name: "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE", value: "72h" },
            { key: "registry:uploadPurging.interval", name: "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_INTERVAL", value: "12h" },
            { key: "registry:quota", name: "REGISTRY_STORAGE_QUOTA", value: "8GiB" },
            { key: "registry:minFree", name: "REGISTRY_STORAGE_MINFREE", value: "512MiB" },
            { key: "registry:logLevel", name: "REGISTRY_LOG_LEVEL", value: "debug" },
        ]);
    });

    test("sets only the fields that are given", () => {
        expect(envOf({ gc: { interval: "0" }, uploadPurging: {} })).toEqual({ REGISTRY_GC_INTERVAL: "0" });
    });

    test("writes retention policies as compact JSON in the server's field order", () => {
        const policies = [
            { olderThan: "14d", keepLast: 1, repositories: "**" },
            { keepTags: "^(main|release-.*)$", olderThan: "1h30m", repositories: "app/?/cache" },
        ];
        const value = envOf({ retention: policies }).REGISTRY_RETENTION_POLICIES;
        expect(value).toBe('[{"repositories":"**","keepLast":1,"olderThan":"14d"},' +
            '{"repositories":"app/?/cache","keepTags":"^(main|release-.*)$","olderThan":"1h30m"}]');
        expect(JSON.parse(value)).toEqual(policies);
        expect(envOf({ retention: [] })).toEqual({ REGISTRY_RETENTION_POLICIES: "[]" });
    });

    test("takes the numbers that `pulumi config set --path` stores for 0 and byte counts", () => {
        expect(envOf({
            gc: { interval: 0, gracePeriod: 0 },
            retention: [{ repositories: "a", keepLast: 0, olderThan: 0 }],
            quota: 1073741824,
        })).toEqual({
            REGISTRY_GC_INTERVAL: "0",
            REGISTRY_GC_GRACEPERIOD: "0",
            REGISTRY_RETENTION_POLICIES: '[{"repositories":"a","keepLast":0,"olderThan":"0"}]',
            REGISTRY_STORAGE_QUOTA: "1073741824",
        });
    });

    test.each(["500ms", "30s", "5m", "6h", "7d", "1h30m", "1.5h", "0"])("accepts the duration %s", (interval) => {
        expect(envOf({ gc: { interval } })).toEqual({ REGISTRY_GC_INTERVAL: interval });
    });

    test.each(["1073741824", "8GiB", "512MiB", "10Gi", "2GB", "100k", "5B", "1.5TiB", "10 gb", "64mib"])("accepts the size %s", (quota) => {
        expect(envOf({ quota })).toEqual({ REGISTRY_STORAGE_QUOTA: quota });
    });

    test.each([
        ["registry:gc", { gc: "6h" }, /^registry:gc must be an object, got "6h"$/],
        ["registry:gc", { gc: ["6h"] }, /^registry:gc must be an object/],
        ["registry:gc", { gc: { intervall: "6h" } }, /^registry:gc has unknown field intervall \(known: interval, gracePeriod, deleteUntagged\)$/],
        ["registry:gc.interval", { gc: { interval: "6" } }, /^registry:gc.interval must be a duration such as 30s, 6h, 7d or 1h30m \(or "0"\), got "6"$/],
        ["registry:gc.interval", { gc: { interval: 6 } }, /^registry:gc.interval must be a duration/],
        ["registry:gc.interval", { gc: { interval: "6 h" } }, /^registry:gc.interval must be a duration/],
        ["registry:gc.interval", { gc: { interval: "-1h" } }, /^registry:gc.interval must be a duration/],
        ["registry:gc.interval", { gc: { interval: "1w" } }, /^registry:gc.interval must be a duration/],
        ["registry:gc.interval", { gc: { interval: "" } }, /^registry:gc.interval must be a duration/],
        ["registry:gc.interval", { gc: { interval: true } }, /^registry:gc.interval must be a duration.*, got true$/],
        ["registry:gc.gracePeriod", { gc: { gracePeriod: "1 hour" } }, /^registry:gc.gracePeriod must be a duration/],
        ["registry:gc.deleteUntagged", { gc: { deleteUntagged: "false" } }, /^registry:gc.deleteUntagged must be true or false, got "false"$/],
        ["registry:retention", { retention: { repositories: "**", keepLast: 1 } }, /^registry:retention must be an array of policies/],
        ["registry:retention", { retention: "[]" }, /^registry:retention must be an array of policies/],
        ["registry:retention[0]", { retention: ["**"] }, /^registry:retention\[0\] must be an object/],
        ["registry:retention[0]", { retention: [{ repositories: "**", keepLast: 1, keep: 2 }] }, /^registry:retention\[0\] has unknown field keep/],
        ["registry:retention[0].repositories", { retention: [{ keepLast: 1 }] }, /^registry:retention\[0\].repositories must be a glob/],
        ["registry:retention[0].repositories", { retention: [{ repositories: "", keepLast: 1 }] }, /^registry:retention\[0\].repositories must be a glob/],
        ["registry:retention[0].repositories", { retention: [{ repositories: "Team/*", keepLast: 1 }] }, /^registry:retention\[0\].repositories must be a glob.*, got "Team\/\*"$/],
        ["registry:retention[0].keepLast", { retention: [{ repositories: "**", keepLast: -1 }] }, /^registry:retention\[0\].keepLast must be an integer from 0 up, got -1$/],
        ["registry:retention[0].keepLast", { retention: [{ repositories: "**", keepLast: 1.5 }] }, /^registry:retention\[0\].keepLast must be an integer/],
        ["registry:retention[0].keepLast", { retention: [{ repositories: "**", keepLast: "5" }] }, /^registry:retention\[0\].keepLast must be an integer/],
        ["registry:retention[0].keepTags", { retention: [{ repositories: "**", keepLast: 1, keepTags: "^(v" }] }, /^registry:retention\[0\].keepTags is not a valid regular expression/],
        ["registry:retention[0].keepTags", { retention: [{ repositories: "**", keepLast: 1, keepTags: 5 }] }, /^registry:retention\[0\].keepTags must be a regular expression string/],
        ["registry:retention[0].olderThan", { retention: [{ repositories: "**", olderThan: "2 weeks" }] }, /^registry:retention\[0\].olderThan must be a duration/],
        ["registry:retention[1]", { retention: [{ repositories: "a", keepLast: 1 }, { repositories: "**", keepTags: "^v" }] },
            /^registry:retention\[1\] needs keepLast or olderThan/],
        ["registry:uploadPurging", { uploadPurging: true }, /^registry:uploadPurging must be an object/],
        ["registry:uploadPurging", { uploadPurging: { enable: true } }, /^registry:uploadPurging has unknown field enable \(known: enabled, age, interval\)$/],
        ["registry:uploadPurging.enabled", { uploadPurging: { enabled: 1 } }, /^registry:uploadPurging.enabled must be true or false/],
        ["registry:uploadPurging.age", { uploadPurging: { age: "1w" } }, /^registry:uploadPurging.age must be a duration/],
        ["registry:uploadPurging.interval", { uploadPurging: { interval: "daily" } }, /^registry:uploadPurging.interval must be a duration/],
        ["registry:quota", { quota: "8 gigs" }, /^registry:quota must be a size such as 8GiB, 512MiB or a number of bytes, got "8 gigs"$/],
        ["registry:quota", { quota: "-1GiB" }, /^registry:quota must be a size/],
        ["registry:quota", { quota: "GiB" }, /^registry:quota must be a size/],
        ["registry:quota", { quota: "8GiBs" }, /^registry:quota must be a size/],
        ["registry:quota", { quota: "" }, /^registry:quota must be a size/],
        ["registry:quota", { quota: -1 }, /^registry:quota must be a size/],
        ["registry:minFree", { minFree: "lots" }, /^registry:minFree must be a size/],
        ["registry:logLevel", { logLevel: "verbose" }, /^registry:logLevel must be one of debug, info, warn, error, got "verbose"$/],
        ["registry:logLevel", { logLevel: "INFO" }, /^registry:logLevel must be one of/],
    ])("rejects a bad %s, naming it", (_key, config, message) => {
        expect(() => maintenanceEnv(config)).toThrow(message);
    });
});

describe("withMaintenanceEnv", () => {
    test("puts the typed keys' variables first, then registry:extraEnv", () => {
        const typed = maintenanceEnv({ gc: { gracePeriod: "2h" }, quota: "8GiB" });
        const env = withMaintenanceEnv(typed, { REGISTRY_GC_INTERVAL: "6h", REGISTRY_LOG_FORMATTER: "text" });
        expect(Object.entries(env)).toEqual([
            ["REGISTRY_GC_GRACEPERIOD", "2h"],
            ["REGISTRY_STORAGE_QUOTA", "8GiB"],
            ["REGISTRY_GC_INTERVAL", "6h"],
            ["REGISTRY_LOG_FORMATTER", "text"],
        ]);
        expect(withMaintenanceEnv([], { A: "1" })).toEqual({ A: "1" });
    });

    test.each([
        [{ gc: { interval: "6h" } }, "REGISTRY_GC_INTERVAL", "registry:gc.interval"],
        [{ retention: [] }, "REGISTRY_RETENTION_POLICIES", "registry:retention"],
        [{ uploadPurging: { age: "1h" } }, "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_AGE", "registry:uploadPurging.age"],
        [{ minFree: "1GiB" }, "REGISTRY_STORAGE_MINFREE", "registry:minFree"],
        [{ logLevel: "warn" }, "REGISTRY_LOG_LEVEL", "registry:logLevel"],
    ])("rejects %j together with the same variable in registry:extraEnv, naming both", (config, name, key) => {
        expect(() => withMaintenanceEnv(maintenanceEnv(config), { [name]: "x" }))
            .toThrow(`${key} and registry:extraEnv.${name} both set ${name}: remove one of them`);
    });
});
