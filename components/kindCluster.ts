import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { KindConfigOptions, renderKindConfig } from "./kindConfig";
import { hostsDir, hostsToml, REMOVE_MIRROR_SCRIPT, WRITE_MIRROR_SCRIPT } from "./mirror";

/** Arguments of {@link KindCluster}. */
export interface KindClusterArgs extends KindConfigOptions {
    /** Registry host pods name in `image:` (e.g. `localhost:5000`); the hosts.toml directory. */
    readonly registryHost: string;
    /** Where nodes' containerd pulls `registryHost` images from (`http://<clusterIP>:5000`). */
    readonly mirror: string;
    /**
     * Adopt this kubeconfig context (of the kind cluster `name`) instead of creating a
     * cluster; destroy then leaves the cluster in place.
     */
    readonly existingContext?: string;
}

/**
 * Creates the kind cluster from `$KIND_CONFIG` (through a temp file); prints only the kubeconfig
 * on stdout (kind's progress goes to stderr). The host data directory is created first so that
 * it belongs to the user, not to the Docker daemon.
 */
export const CREATE_CLUSTER_SCRIPT = `set -eu
mkdir -p "$DATA_DIR"
config=$(mktemp)
trap 'rm -f "$config"' EXIT
printf '%s' "$KIND_CONFIG" > "$config"
kind create cluster --name "$CLUSTER_NAME" --config "$config" --wait 120s >&2
kind get kubeconfig --name "$CLUSTER_NAME"
`;

export const DELETE_CLUSTER_SCRIPT = `kind delete cluster --name "$CLUSTER_NAME"`;

/** Kubeconfig of an adopted cluster: only its context, with credentials inlined. */
export const EXISTING_KUBECONFIG_SCRIPT = `kubectl config view --raw --minify --flatten --context "$KUBE_CONTEXT"`;

/**
 * A kind cluster whose nodes resolve `<registryHost>/...` images to the in-cluster registry,
 * plus a Kubernetes provider for it.
 */
export class KindCluster extends pulumi.ComponentResource {
    public readonly clusterName: pulumi.Output<string>;
    /** Changes whenever the cluster is (re)created: a trigger for node-level steps. */
    public readonly clusterId: pulumi.Output<string>;
    /** Kubeconfig of the cluster (secret). */
    public readonly kubeconfig: pulumi.Output<string>;
    public readonly provider: k8s.Provider;
    /** Completes once every node has the mirror's hosts.toml. */
    public readonly mirrorReady: pulumi.Output<string>;

    constructor(name: string, args: KindClusterArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kind-local-registry:index:KindCluster", name, args, opts);

        const kindConfig = renderKindConfig(args);
        const cluster = args.existingContext
            ? new command.local.Command(`${name}-kubeconfig`, {
                create: EXISTING_KUBECONFIG_SCRIPT,
                environment: { KUBE_CONTEXT: args.existingContext },
                logging: command.types.enums.local.Logging.Stderr,
            }, { parent: this, additionalSecretOutputs: ["stdout"] })
            : new command.local.Command(`${name}-create`, {
                create: CREATE_CLUSTER_SCRIPT,
                delete: DELETE_CLUSTER_SCRIPT,
                environment: {
                    CLUSTER_NAME: args.name,
                    DATA_DIR: args.dataDir,
                    KIND_CONFIG: kindConfig,
                },
                // A changed kind config can only take effect on a new cluster.
                triggers: [kindConfig],
                logging: command.types.enums.local.Logging.Stderr,
                // Two clusters of one name cannot coexist: delete the old one first.
            }, { parent: this, additionalSecretOutputs: ["stdout"], deleteBeforeReplace: true });

        const hostsTomlText = hostsToml(args.registryHost, args.mirror);
        const mirror = new command.local.Command(`${name}-mirror`, {
            create: WRITE_MIRROR_SCRIPT,
            delete: REMOVE_MIRROR_SCRIPT,
            environment: {
                CLUSTER_NAME: args.name,
                HOSTS_DIR: hostsDir(args.registryHost),
                HOSTS_TOML: hostsTomlText,
            },
            // Rewrite the nodes' file whenever the cluster is replaced or the text changes.
            triggers: [cluster.id, hostsTomlText],
            // Otherwise the old resource's delete would remove the file the new one just wrote.
        }, { parent: this, dependsOn: [cluster], deleteBeforeReplace: true });

        this.clusterName = pulumi.output(args.name);
        this.clusterId = cluster.id;
        this.kubeconfig = pulumi.secret(cluster.stdout);
        this.mirrorReady = mirror.id;
        this.provider = new k8s.Provider(`${name}-provider`, {
            kubeconfig: this.kubeconfig,
        }, { parent: this, dependsOn: [mirror] });

        this.registerOutputs({
            clusterName: this.clusterName,
            clusterId: this.clusterId,
            kubeconfig: this.kubeconfig,
            mirrorReady: this.mirrorReady,
        });
    }
}
