import type { Input } from "@pulumi/pulumi";
import { stringify } from "yaml";
import { LOCAL_REGISTRY_HELP_URL, NODE_DATA_PATH, REGISTRY_NAMESPACE, REGISTRY_PORT, REGISTRY_SERVICE } from "./endpoints";
import { DEFAULT_LOG_LEVEL } from "./maintenance";
import { ContainerResources } from "./settings";

/** Where the registry keeps its data inside the container (the PVC's mount). */
export const REGISTRY_DATA_MOUNT = "/var/lib/registry";
/** uid/gid of user `node` in the node:20 images the registry image is built from. */
export const REGISTRY_UID = 1000;

/** Labels on every object of the registry; the first two also select its pods. */
export function registryLabels(): Record<string, string> {
    return {
        "app.kubernetes.io/name": REGISTRY_SERVICE,
        "app.kubernetes.io/instance": REGISTRY_SERVICE,
        "app.kubernetes.io/component": "registry",
        "app.kubernetes.io/part-of": "kind-local-registry",
        "app.kubernetes.io/managed-by": "pulumi",
    };
}

export function registrySelector(): Record<string, string> {
    const labels = registryLabels();
    return {
        "app.kubernetes.io/name": labels["app.kubernetes.io/name"],
        "app.kubernetes.io/instance": labels["app.kubernetes.io/instance"],
    };
}

/**
 * The container's environment, in registry:2's variable names (which our server reads):
 * the stack's fixed settings and the default log level first, then `extraEnv` (the typed
 * maintenance keys' variables and `registry:extraEnv`), which may override the log level.
 */
export function registryEnv(extraEnv: Readonly<Record<string, string>>): { name: string; value: string }[] {
    const env: Record<string, string> = {
        REGISTRY_HTTP_ADDR: `:${REGISTRY_PORT}`,
        REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: REGISTRY_DATA_MOUNT,
        REGISTRY_STORAGE_DELETE_ENABLED: "true",
        REGISTRY_LOG_LEVEL: DEFAULT_LOG_LEVEL,
        ...extraEnv,
    };
    return Object.entries(env).map(([name, value]) => ({ name, value }));
}

/** Value of key `localRegistryHosting.v1` of ConfigMap kube-public/local-registry-hosting (KEP-1755). */
export function localRegistryHosting(registryHost: string): string {
    return stringify({
        host: registryHost,
        // Nodes' containerd reaches the same name through the hosts.toml mirror.
        hostFromContainerRuntime: registryHost,
        hostFromClusterNetwork: `${REGISTRY_SERVICE}.${REGISTRY_NAMESPACE}.svc.cluster.local:${REGISTRY_PORT}`,
        help: LOCAL_REGISTRY_HELP_URL,
    });
}

/** Probe on the API version check endpoint, which answers 200 without authentication. */
export function registryProbe(initialDelaySeconds: number, periodSeconds: number, failureThreshold: number) {
    return {
        httpGet: { path: "/v2/", port: "http" },
        initialDelaySeconds,
        periodSeconds,
        timeoutSeconds: 2,
        failureThreshold,
    };
}

export interface RegistryPodOptions {
    /** Image reference; an Output so the pod waits until the image is in the nodes. */
    readonly image: Input<string>;
    readonly resources: ContainerResources;
    readonly extraEnv: Readonly<Record<string, string>>;
    readonly claimName: string;
}

const RUN_AS_NODE = { runAsNonRoot: true, runAsUser: REGISTRY_UID, runAsGroup: REGISTRY_UID };
const LOCKED_DOWN = { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false };

/** Pod template spec of Deployment `registry` (without metadata). */
export function registryPodSpec(options: RegistryPodOptions) {
    return {
        securityContext: {
            ...RUN_AS_NODE,
            fsGroup: REGISTRY_UID,
            seccompProfile: { type: "RuntimeDefault" },
        },
        // hostPath volumes ignore fsGroup, and the host directory (or one left by an older
        // root-run registry) may belong to root: hand it to uid 1000 before the server starts.
        initContainers: [{
            name: "volume-permissions",
            image: options.image,
            imagePullPolicy: "IfNotPresent",
            command: ["sh", "-c",
                `find ${REGISTRY_DATA_MOUNT} \\( ! -user ${REGISTRY_UID} -o ! -group ${REGISTRY_UID} \\) ` +
                `-exec chown ${REGISTRY_UID}:${REGISTRY_UID} {} +`],
            securityContext: {
                runAsNonRoot: false,
                runAsUser: 0,
                ...LOCKED_DOWN,
                // DAC_READ_SEARCH lets find descend into directories the server created 0700.
                capabilities: { drop: ["ALL"], add: ["CHOWN", "DAC_READ_SEARCH"] },
            },
            resources: { limits: { memory: "64Mi", cpu: "100m" }, requests: { memory: "16Mi", cpu: "10m" } },
            volumeMounts: [{ name: "data", mountPath: REGISTRY_DATA_MOUNT }],
        }],
        containers: [{
            name: "registry",
            image: options.image,
            // The image exists only in the nodes (kind load); never try a remote pull.
            imagePullPolicy: "IfNotPresent",
            ports: [{ name: "http", containerPort: REGISTRY_PORT, protocol: "TCP" }],
            env: registryEnv(options.extraEnv),
            resources: options.resources,
            readinessProbe: registryProbe(2, 5, 3),
            livenessProbe: registryProbe(10, 10, 6),
            securityContext: { ...RUN_AS_NODE, ...LOCKED_DOWN, capabilities: { drop: ["ALL"] } },
            volumeMounts: [
                { name: "data", mountPath: REGISTRY_DATA_MOUNT },
                // The root filesystem is read-only; give Node a writable temp directory anyway.
                { name: "tmp", mountPath: "/tmp" },
            ],
        }],
        volumes: [
            { name: "data", persistentVolumeClaim: { claimName: options.claimName } },
            { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
        ],
    };
}

/** PV spec: the node path every kind node mounts from the laptop, kept on destroy. */
export function registryVolumeSpec(storageSize: string, claimName: string) {
    return {
        capacity: { storage: storageSize },
        accessModes: ["ReadWriteOnce"],
        persistentVolumeReclaimPolicy: "Retain",
        // "" opts out of kind's default StorageClass and its dynamic provisioner.
        storageClassName: "",
        // Reserved for our claim so that no other PVC binds it.
        claimRef: { namespace: REGISTRY_NAMESPACE, name: claimName },
        hostPath: { path: NODE_DATA_PATH, type: "DirectoryOrCreate" },
    };
}
