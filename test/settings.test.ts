import { ConfigReader, DEFAULT_RESOURCES, defaultDataDir, readSettings } from "../components/settings";

/** A ConfigReader over plain values, typed like Pulumi's (numbers and objects parsed). */
function reader(values: Record<string, unknown> = {}): ConfigReader {
    return {
        get: (key) => (values[key] === undefined ? undefined : String(values[key])),
        getNumber: (key) => (values[key] === undefined ? undefined : Number(values[key])),
        getObject: <T>(key: string) => values[key] as T | undefined,
    };
}

const env = { XDG_DATA_HOME: "/data" };

describe("readSettings", () => {
    test("applies the documented defaults when no config is set", () => {
        expect(readSettings(reader(), reader(), env)).toEqual({
            cluster: {
                name: "hostk8s",
                workers: 0,
                nodeImage: undefined,
                dataDir: "/data/kind-local-registry/hostk8s",
                serviceSubnet: "10.96.0.0/16",
                existingContext: undefined,
            },
            registry: {
                hostPort: 5000,
                nodePort: 30500,
                clusterIP: "10.96.0.250",
                storageSize: "10Gi",
                resources: DEFAULT_RESOURCES,
                extraEnv: {},
            },
        });
    });

    test("takes every key from config", () => {
        const settings = readSettings(
            reader({
                name: "dev", workers: 2, nodeImage: "kindest/node:v1.33.1", dataDir: "/srv/registry",
                serviceSubnet: "10.100.0.0/20", existingContext: "kind-dev",
            }),
            reader({
                hostPort: 5001, nodePort: 30501, clusterIP: "10.100.0.20", storageSize: "20Gi",
                resources: { limits: { memory: "512Mi" } },
                extraEnv: { REGISTRY_GC_ENABLED: true, REGISTRY_RETENTION_KEEP: 3, REGISTRY_LOG_LEVEL: "debug" },
            }),
            env);
        expect(settings).toEqual({
            cluster: {
                name: "dev", workers: 2, nodeImage: "kindest/node:v1.33.1", dataDir: "/srv/registry",
                serviceSubnet: "10.100.0.0/20", existingContext: "kind-dev",
            },
            registry: {
                hostPort: 5001, nodePort: 30501, clusterIP: "10.100.0.20", storageSize: "20Gi",
                resources: { limits: { memory: "512Mi", cpu: "200m" }, requests: DEFAULT_RESOURCES.requests },
                extraEnv: { REGISTRY_GC_ENABLED: "true", REGISTRY_RETENTION_KEEP: "3", REGISTRY_LOG_LEVEL: "debug" },
            },
        });
    });

    test("adds the typed maintenance keys' variables to extraEnv, before registry:extraEnv's own", () => {
        const settings = readSettings(reader(), reader({
            gc: { interval: "6h" },
            retention: [{ repositories: "team/*", keepLast: 5 }],
            uploadPurging: { enabled: false },
            quota: "8GiB",
            minFree: "1GiB",
            logLevel: "warn",
            extraEnv: { REGISTRY_LOG_FORMATTER: "text" },
        }), env);
        expect(Object.entries(settings.registry.extraEnv)).toEqual([
            ["REGISTRY_GC_INTERVAL", "6h"],
            ["REGISTRY_RETENTION_POLICIES", '[{"repositories":"team/*","keepLast":5}]'],
            ["REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED", "false"],
            ["REGISTRY_STORAGE_QUOTA", "8GiB"],
            ["REGISTRY_STORAGE_MINFREE", "1GiB"],
            ["REGISTRY_LOG_LEVEL", "warn"],
            ["REGISTRY_LOG_FORMATTER", "text"],
        ]);
    });

    test("resolves a relative data directory to an absolute path (kind mounts need one)", () => {
        expect(readSettings(reader({ dataDir: "data" }), reader(), env).cluster.dataDir).toBe(`${process.cwd()}/data`);
    });

    test.each([
        ["cluster:name", { name: "Dev_Cluster" }, {}, /cluster:name must be a DNS label/],
        ["cluster:workers", { workers: -1 }, {}, /cluster:workers must be an integer from 0 to 10/],
        ["cluster:workers", { workers: 1.5 }, {}, /cluster:workers must be an integer/],
        ["cluster:serviceSubnet", { serviceSubnet: "10.96.0.0" }, {}, /must be an IPv4 CIDR/],
        ["cluster:serviceSubnet", { serviceSubnet: "10.96.0.1/16" }, {}, /has host bits set/],
        ["registry:hostPort", {}, { hostPort: 70000 }, /registry:hostPort must be an integer from 1 to 65535/],
        ["registry:nodePort", {}, { nodePort: 8080 }, /registry:nodePort must be an integer from 30000 to 32767/],
        ["registry:hostPort", {}, { hostPort: 30500 }, /must differ, both are 30500/],
        ["registry:clusterIP", {}, { clusterIP: "10.97.0.250" }, /outside cluster:serviceSubnet 10.96.0.0\/16/],
        ["registry:clusterIP", {}, { clusterIP: "10.96.0.10" }, /reserved/],
        ["registry:clusterIP", {}, { clusterIP: "10.96.0.1" }, /reserved/],
        ["registry:clusterIP", {}, { clusterIP: "10.96.300.1" }, /must be an IPv4 address/],
        ["registry:storageSize", {}, { storageSize: "ten gigs" }, /must be a Kubernetes quantity/],
        ["registry:resources", {}, { resources: { limits: { cpu: "lots" } } }, /resources.limits.cpu must be a Kubernetes quantity/],
        ["registry:resources", {}, { resources: ["256Mi"] }, /registry:resources must be an object/],
        ["registry:extraEnv", {}, { extraEnv: "A=1" }, /registry:extraEnv must be an object/],
        ["registry:extraEnv", {}, { extraEnv: { "BAD-NAME": "1" } }, /must be an environment variable name/],
        ["registry:extraEnv", {}, { extraEnv: { REGISTRY_HTTP_ADDR: ":6000" } }, /may not set REGISTRY_HTTP_ADDR/],
        ["registry:extraEnv", {}, { extraEnv: { REGISTRY_GC: { on: true } } }, /must be a string, number or boolean/],
        ["registry:quota", {}, { quota: "8 gigs" }, /registry:quota must be a size/],
        ["registry:retention", {}, { retention: [{ repositories: "**" }] }, /registry:retention\[0\] needs keepLast or olderThan/],
        ["registry:gc", {}, { gc: { interval: "6h" }, extraEnv: { REGISTRY_GC_INTERVAL: "1h" } },
            /registry:gc.interval and registry:extraEnv.REGISTRY_GC_INTERVAL both set REGISTRY_GC_INTERVAL/],
    ])("rejects an invalid %s", (_key, cluster, registry, message) => {
        expect(() => readSettings(reader(cluster), reader(registry), env)).toThrow(message);
    });
});

describe("defaultDataDir", () => {
    test("lives under XDG_DATA_HOME when it is set and absolute", () => {
        expect(defaultDataDir("c", { XDG_DATA_HOME: "/x" }, "/home/u")).toBe("/x/kind-local-registry/c");
    });

    test("falls back to ~/.local/share", () => {
        expect(defaultDataDir("c", {}, "/home/u")).toBe("/home/u/.local/share/kind-local-registry/c");
        expect(defaultDataDir("c", { XDG_DATA_HOME: "relative" }, "/home/u")).toBe("/home/u/.local/share/kind-local-registry/c");
    });
});
