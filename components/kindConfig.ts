import { stringify } from "yaml";
import { CONTAINERD_CERTS_DIR, NODE_DATA_PATH } from "./endpoints";

/** Inputs of the kind cluster configuration. */
export interface KindConfigOptions {
    readonly name: string;
    readonly workers: number;
    readonly nodeImage?: string;
    /** Absolute host directory that holds the registry's data. */
    readonly dataDir: string;
    readonly serviceSubnet: string;
    /** Laptop port for pushes (`localhost:<hostPort>`). */
    readonly hostPort: number;
    /** NodePort of the registry; published on the laptop under the same number. */
    readonly nodePort: number;
}

/** The subset of kind's `kind.x-k8s.io/v1alpha4` Cluster schema this stack writes. */
export interface KindClusterConfig {
    kind: "Cluster";
    apiVersion: "kind.x-k8s.io/v1alpha4";
    name: string;
    networking: { serviceSubnet: string };
    containerdConfigPatches: string[];
    nodes: KindNode[];
}

export interface KindNode {
    role: "control-plane" | "worker";
    image?: string;
    extraPortMappings?: { containerPort: number; hostPort: number; listenAddress: string; protocol: "TCP" }[];
    extraMounts: { hostPath: string; containerPath: string }[];
}

/**
 * Switches containerd's CRI registry config to the `config_path` form, so that a per-host
 * `hosts.toml` under CONTAINERD_CERTS_DIR configures mirrors; the old `mirrors` table cannot be
 * combined with it (containerd#5304).
 */
export const CONTAINERD_CONFIG_PATH_PATCH = `[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "${CONTAINERD_CERTS_DIR}"
`;

export function kindClusterConfig(options: KindConfigOptions): KindClusterConfig {
    // Every node mounts the same host directory: the registry pod may land on any node, and
    // a PV hostPath is a path inside the node container, not on the laptop (kind#2339).
    const extraMounts = [{ hostPath: options.dataDir, containerPath: NODE_DATA_PATH }];
    const image = options.nodeImage ? { image: options.nodeImage } : {};
    // 127.0.0.1 only: the registry has no authentication. Docker treats `localhost:<port>`
    // as an insecure registry by default, so `docker push localhost:5000/...` needs no TLS.
    const extraPortMappings = [options.hostPort, options.nodePort].map((hostPort) => ({
        containerPort: options.nodePort,
        hostPort,
        listenAddress: "127.0.0.1",
        protocol: "TCP" as const,
    }));
    const workers: KindNode[] = Array.from({ length: options.workers }, () => ({
        role: "worker",
        ...image,
        extraMounts,
    }));
    return {
        kind: "Cluster",
        apiVersion: "kind.x-k8s.io/v1alpha4",
        name: options.name,
        networking: { serviceSubnet: options.serviceSubnet },
        containerdConfigPatches: [CONTAINERD_CONFIG_PATH_PATCH],
        nodes: [{ role: "control-plane", ...image, extraPortMappings, extraMounts }, ...workers],
    };
}

/** The kind config as the YAML file passed to `kind create cluster --config`. */
export function renderKindConfig(options: KindConfigOptions): string {
    // aliasDuplicateObjects: false keeps the shared extraMounts list written out on every node.
    return stringify(kindClusterConfig(options), { aliasDuplicateObjects: false });
}
