import * as os from "os";
import * as path from "path";
import { maintenanceEnv, withMaintenanceEnv } from "./maintenance";
import { requireInteger, requireMatch, requireRecord } from "./validation";

/** CPU and memory quantities of one container, in Kubernetes quantity notation. */
export interface ContainerResources {
    readonly limits: { readonly memory: string; readonly cpu: string };
    readonly requests: { readonly memory: string; readonly cpu: string };
}

/** Everything the stack reads from config, with defaults applied and validated. */
export interface StackSettings {
    readonly cluster: {
        /** kind cluster name (`kind create cluster --name`). */
        readonly name: string;
        /** Worker nodes besides the control plane. */
        readonly workers: number;
        /** kindest/node image; undefined lets the installed kind choose its default. */
        readonly nodeImage?: string;
        /** Host directory mounted into every node; the registry's data lives there. */
        readonly dataDir: string;
        /** Service CIDR set explicitly so that the registry's fixed ClusterIP is valid. */
        readonly serviceSubnet: string;
        /** When set, adopt this kubeconfig context instead of creating a cluster. */
        readonly existingContext?: string;
    };
    readonly registry: {
        /** Laptop port for `docker push localhost:<hostPort>/...` (127.0.0.1 only). */
        readonly hostPort: number;
        /** NodePort of Service `registry-nodeport`, also published on the laptop. */
        readonly nodePort: number;
        /** Fixed ClusterIP of Service `registry`: the address nodes' containerd pulls from. */
        readonly clusterIP: string;
        readonly storageSize: string;
        readonly resources: ContainerResources;
        /**
         * Extra environment for the registry container: the variables of the typed keys
         * (`registry:gc`, `retention`, `uploadPurging`, `quota`, `minFree`, `logLevel`), then `registry:extraEnv`.
         */
        readonly extraEnv: Readonly<Record<string, string>>;
    };
}

/** The subset of `pulumi.Config` the stack uses, so settings can be read without Pulumi. */
export interface ConfigReader {
    get(key: string): string | undefined;
    getNumber(key: string): number | undefined;
    getObject<T>(key: string): T | undefined;
}

export const DEFAULT_RESOURCES: ContainerResources = {
    limits: { memory: "256Mi", cpu: "200m" },
    requests: { memory: "128Mi", cpu: "100m" },
};

export const DEFAULTS = {
    clusterName: "hostk8s",
    workers: 0,
    // kind's own default, made explicit: the registry's fixed ClusterIP must lie inside it.
    serviceSubnet: "10.96.0.0/16",
    hostPort: 5000,
    nodePort: 30500,
    // In the low band that Kubernetes keeps for static ClusterIPs (KEP-3070), so dynamic
    // allocation never takes it first; .1 is the API server and .10 is kube-dns.
    clusterIP: "10.96.0.250",
    storageSize: "10Gi",
} as const;

/**
 * Environment keys tied to the stack's own wiring (listen port, volume mount path):
 * `extraEnv` may not override them.
 */
export const RESERVED_ENV = ["REGISTRY_HTTP_ADDR", "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"];

/** `$XDG_DATA_HOME/kind-local-registry/<cluster>`, falling back to `~/.local/share`. */
export function defaultDataDir(clusterName: string, env: NodeJS.ProcessEnv = process.env, home = os.homedir()): string {
    const dataHome = env.XDG_DATA_HOME && path.isAbsolute(env.XDG_DATA_HOME)
        ? env.XDG_DATA_HOME
        : path.join(home, ".local", "share");
    return path.join(dataHome, "kind-local-registry", clusterName);
}

/** Reads and validates config namespaces `cluster:*` and `registry:*`. Throws on invalid values. */
export function readSettings(cluster: ConfigReader, registry: ConfigReader, env: NodeJS.ProcessEnv = process.env): StackSettings {
    const name = cluster.get("name") ?? DEFAULTS.clusterName;
    requireMatch("cluster:name", name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "a DNS label (lower case letters, digits, '-')");
    const workers = cluster.getNumber("workers") ?? DEFAULTS.workers;
    requireInteger("cluster:workers", workers, 0, 10);
    const serviceSubnet = cluster.get("serviceSubnet") ?? DEFAULTS.serviceSubnet;
    const subnet = parseCidr("cluster:serviceSubnet", serviceSubnet);

    const hostPort = registry.getNumber("hostPort") ?? DEFAULTS.hostPort;
    requireInteger("registry:hostPort", hostPort, 1, 65535);
    const nodePort = registry.getNumber("nodePort") ?? DEFAULTS.nodePort;
    requireInteger("registry:nodePort", nodePort, 30000, 32767);
    if (hostPort === nodePort) {
        // Both are published on the laptop; one host port cannot be mapped twice.
        throw new Error(`registry:hostPort and registry:nodePort must differ, both are ${hostPort}`);
    }
    const clusterIP = registry.get("clusterIP") ?? DEFAULTS.clusterIP;
    requireUsableClusterIP(clusterIP, subnet, serviceSubnet);
    const storageSize = registry.get("storageSize") ?? DEFAULTS.storageSize;
    requireMatch("registry:storageSize", storageSize, QUANTITY, "a Kubernetes quantity such as 10Gi");

    const dataDir = cluster.get("dataDir");
    return {
        cluster: {
            name,
            workers,
            nodeImage: cluster.get("nodeImage") || undefined,
            dataDir: dataDir ? path.resolve(dataDir) : defaultDataDir(name, env),
            serviceSubnet,
            existingContext: cluster.get("existingContext") || undefined,
        },
        registry: {
            hostPort,
            nodePort,
            clusterIP,
            storageSize,
            resources: readResources(registry.getObject<unknown>("resources")),
            extraEnv: withMaintenanceEnv(readMaintenanceEnv(registry), readExtraEnv(registry.getObject<unknown>("extraEnv"))),
        },
    };
}

const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

function readResources(raw: unknown): ContainerResources {
    if (raw === undefined) {
        return DEFAULT_RESOURCES;
    }
    const given = requireRecord("registry:resources", raw);
    const pick = (group: "limits" | "requests", key: "memory" | "cpu"): string => {
        const groupValue = given[group] === undefined ? {} : requireRecord(`registry:resources.${group}`, given[group]);
        const value = groupValue[key] ?? DEFAULT_RESOURCES[group][key];
        const text = typeof value === "number" ? String(value) : value;
        if (typeof text !== "string" || !QUANTITY.test(text)) {
            throw new Error(`registry:resources.${group}.${key} must be a Kubernetes quantity, got ${JSON.stringify(value)}`);
        }
        return text;
    };
    return {
        limits: { memory: pick("limits", "memory"), cpu: pick("limits", "cpu") },
        requests: { memory: pick("requests", "memory"), cpu: pick("requests", "cpu") },
    };
}

function readMaintenanceEnv(registry: ConfigReader) {
    return maintenanceEnv({
        gc: registry.getObject<unknown>("gc"),
        retention: registry.getObject<unknown>("retention"),
        uploadPurging: registry.getObject<unknown>("uploadPurging"),
        quota: registry.get("quota"),
        minFree: registry.get("minFree"),
        logLevel: registry.get("logLevel"),
    });
}

function readExtraEnv(raw: unknown): Record<string, string> {
    if (raw === undefined) {
        return {};
    }
    const env: Record<string, string> = {};
    for (const [key, value] of Object.entries(requireRecord("registry:extraEnv", raw))) {
        requireMatch("registry:extraEnv key", key, /^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name");
        if (RESERVED_ENV.includes(key)) {
            throw new Error(`registry:extraEnv may not set ${key}: the stack derives it from its ports and volume`);
        }
        if (typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
            throw new Error(`registry:extraEnv.${key} must be a string, number or boolean, got ${JSON.stringify(value)}`);
        }
        env[key] = String(value);
    }
    return env;
}

/** Parses an IPv4 CIDR into its network address and prefix length. */
export function parseCidr(key: string, cidr: string): { network: number; prefix: number } {
    const match = /^([0-9.]+)\/([0-9]{1,2})$/.exec(cidr);
    const prefix = match ? Number(match[2]) : NaN;
    const address = match ? ipv4ToNumber(match[1]) : undefined;
    if (address === undefined || !(prefix >= 8 && prefix <= 30)) {
        throw new Error(`${key} must be an IPv4 CIDR with a prefix from /8 to /30, got ${JSON.stringify(cidr)}`);
    }
    const mask = prefixMask(prefix);
    if ((address & mask) >>> 0 !== address) {
        throw new Error(`${key} ${cidr} has host bits set`);
    }
    return { network: address, prefix };
}

/** Dotted-quad IPv4 to an unsigned 32-bit number; undefined when malformed. */
export function ipv4ToNumber(ip: string): number | undefined {
    const parts = ip.split(".");
    if (parts.length !== 4 || parts.some((p) => !/^[0-9]{1,3}$/.test(p) || Number(p) > 255)) {
        return undefined;
    }
    return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

function prefixMask(prefix: number): number {
    return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

function requireUsableClusterIP(ip: string, subnet: { network: number; prefix: number }, cidr: string): void {
    const address = ipv4ToNumber(ip);
    if (address === undefined) {
        throw new Error(`registry:clusterIP must be an IPv4 address, got ${JSON.stringify(ip)}`);
    }
    if (((address & prefixMask(subnet.prefix)) >>> 0) !== subnet.network) {
        throw new Error(`registry:clusterIP ${ip} is outside cluster:serviceSubnet ${cidr}`);
    }
    const offset = address - subnet.network;
    const last = 2 ** (32 - subnet.prefix) - 1;
    // .0 is the network, the last is broadcast, +1 is the `kubernetes` Service, +10 kube-dns.
    if ([0, 1, 10, last].includes(offset)) {
        throw new Error(`registry:clusterIP ${ip} is reserved in ${cidr} (network, broadcast, kubernetes API or kube-dns)`);
    }
}
