/** Names, ports and paths that several components (and the stack outputs) must agree on. */

export const REGISTRY_NAMESPACE = "registry";
export const REGISTRY_SERVICE = "registry";
/** Port the registry listens on in its container, and the port of Service `registry`. */
export const REGISTRY_PORT = 5000;
/** Path inside every kind node where the host data directory is mounted; the PV's hostPath. */
export const NODE_DATA_PATH = "/mnt/local-storage/registry";
/** containerd's `config_path`: one `<host>/hosts.toml` per registry host. */
export const CONTAINERD_CERTS_DIR = "/etc/containerd/certs.d";
export const LOCAL_REGISTRY_HELP_URL = "https://kind.sigs.k8s.io/docs/user/local-registry/";

/** Where the registry is reached from the laptop, from the cluster network and from CI. */
export interface RegistryEndpoints {
    /** `docker push <pushEndpoint>/app:tag`; also the name pods use in `image:`. */
    readonly pushEndpoint: string;
    readonly externalUrl: string;
    readonly inClusterEndpoint: string;
    readonly catalogUrl: string;
    readonly manifestUrlTemplate: string;
}

export function registryEndpoints(hostPort: number, nodePort: number): RegistryEndpoints {
    const pushEndpoint = `localhost:${hostPort}`;
    return {
        pushEndpoint,
        externalUrl: `http://localhost:${nodePort}`,
        inClusterEndpoint: `${REGISTRY_SERVICE}.${REGISTRY_NAMESPACE}.svc.cluster.local:${REGISTRY_PORT}`,
        catalogUrl: `http://${pushEndpoint}/v2/_catalog`,
        manifestUrlTemplate: `http://${pushEndpoint}/v2/{repository}/manifests/{reference}`,
    };
}

/** The mirror host containerd on a node pulls from: the fixed ClusterIP, plain HTTP (kind#2604). */
export function mirrorEndpoint(clusterIP: string): string {
    return `http://${clusterIP}:${REGISTRY_PORT}`;
}
