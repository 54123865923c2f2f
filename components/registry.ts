import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { REGISTRY_NAMESPACE, REGISTRY_PORT, REGISTRY_SERVICE } from "./endpoints";
import {
    localRegistryHosting,
    registryLabels,
    registryPodSpec,
    registrySelector,
    registryVolumeSpec,
} from "./registrySpec";
import { ContainerResources } from "./settings";

export const REGISTRY_PV = "registry-data-pv";
export const REGISTRY_PVC = "registry-data";
export const REGISTRY_NODEPORT_SERVICE = "registry-nodeport";

/** Arguments of {@link Registry}. */
export interface RegistryArgs {
    /** Registry server image, already present in the nodes. */
    readonly image: pulumi.Input<string>;
    /** Registry host as pushed to and named in pods' `image:` (e.g. `localhost:5000`). */
    readonly registryHost: string;
    /** Fixed ClusterIP of Service `registry`: the nodes' containerd mirror points at it. */
    readonly clusterIP: string;
    readonly nodePort: number;
    readonly storageSize: string;
    readonly resources: ContainerResources;
    /** Passed through to the container's environment (GC, retention, quota settings). */
    readonly extraEnv?: Readonly<Record<string, string>>;
}

/** The in-cluster registry: storage, Deployment, Services and its KEP-1755 advertisement. */
export class Registry extends pulumi.ComponentResource {
    public readonly namespace: pulumi.Output<string>;
    public readonly deploymentName: pulumi.Output<string>;
    public readonly serviceClusterIP: pulumi.Output<string>;

    constructor(name: string, args: RegistryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kind-local-registry:index:Registry", name, args, opts);
        const child = { parent: this };
        const labels = registryLabels();
        const meta = (objectName: string) => ({ name: objectName, namespace: REGISTRY_NAMESPACE, labels });

        const namespace = new k8s.core.v1.Namespace(`${name}-namespace`, {
            metadata: { name: REGISTRY_NAMESPACE, labels },
        }, child);
        const inNamespace = { parent: this, dependsOn: [namespace] };

        const volume = new k8s.core.v1.PersistentVolume(`${name}-pv`, {
            metadata: { name: REGISTRY_PV, labels },
            spec: registryVolumeSpec(args.storageSize, REGISTRY_PVC),
        }, child);

        const claim = new k8s.core.v1.PersistentVolumeClaim(`${name}-pvc`, {
            metadata: meta(REGISTRY_PVC),
            spec: {
                accessModes: ["ReadWriteOnce"],
                storageClassName: "",
                volumeName: REGISTRY_PV,
                resources: { requests: { storage: args.storageSize } },
            },
        }, { parent: this, dependsOn: [namespace, volume] });

        const deployment = new k8s.apps.v1.Deployment(`${name}-deployment`, {
            metadata: meta(REGISTRY_SERVICE),
            spec: {
                replicas: 1,
                selector: { matchLabels: registrySelector() },
                // Recreate: one writer on the data directory at a time and the RWO claim free
                // for the new pod. A few seconds without a registry during a rollout are
                // acceptable on a laptop; the registry's own image never comes from itself.
                strategy: { type: "Recreate" },
                template: {
                    metadata: { labels },
                    spec: registryPodSpec({
                        image: args.image,
                        resources: args.resources,
                        extraEnv: args.extraEnv ?? {},
                        claimName: REGISTRY_PVC,
                    }),
                },
            },
        }, { parent: this, dependsOn: [claim] });

        const ports = [{ name: "http", port: REGISTRY_PORT, targetPort: "http", protocol: "TCP" }];
        const service = new k8s.core.v1.Service(`${name}-service`, {
            metadata: meta(REGISTRY_SERVICE),
            spec: {
                type: "ClusterIP",
                // Fixed so that the nodes' hosts.toml can name it: a node's containerd cannot
                // resolve cluster DNS, but kube-proxy routes the node's own traffic to
                // ClusterIPs in every proxy mode (kind#2949, containerd#10344).
                clusterIP: args.clusterIP,
                selector: registrySelector(),
                ports,
            },
        }, inNamespace);

        new k8s.core.v1.Service(`${name}-nodeport`, {
            metadata: meta(REGISTRY_NODEPORT_SERVICE),
            spec: {
                type: "NodePort",
                selector: registrySelector(),
                ports: [{ ...ports[0], nodePort: args.nodePort }],
            },
        }, inNamespace);

        new k8s.core.v1.ConfigMap(`${name}-hosting`, {
            metadata: { name: "local-registry-hosting", namespace: "kube-public", labels },
            data: { "localRegistryHosting.v1": localRegistryHosting(args.registryHost) },
        }, child);

        this.namespace = namespace.metadata.name;
        this.deploymentName = deployment.metadata.name;
        this.serviceClusterIP = service.spec.clusterIP;
        this.registerOutputs({
            namespace: this.namespace,
            deploymentName: this.deploymentName,
            serviceClusterIP: this.serviceClusterIP,
        });
    }
}
