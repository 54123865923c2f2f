import { CONTAINERD_CERTS_DIR } from "./endpoints";

/**
 * containerd's hosts.toml for `registryHost` (e.g. `localhost:5000`): pulls of
 * `localhost:5000/<repo>:<tag>` on a node go to `mirror` (the registry Service's fixed
 * ClusterIP). A node's containerd cannot resolve cluster DNS (kind#2949, containerd#10344),
 * hence an IP; and plain `http://`, or containerd answers "server gave HTTP response to
 * HTTPS client" (kind#2604). `server` is only the fallback when the mirror fails.
 */
export function hostsToml(registryHost: string, mirror: string): string {
    return [
        "# Written by the kind-local-registry stack: resolves localhost registry pulls in-cluster.",
        `server = "http://${registryHost}"`,
        "",
        `[host."${mirror}"]`,
        `  capabilities = ["pull", "resolve"]`,
        "",
    ].join("\n");
}

/** Directory on a node that holds the hosts.toml of `registryHost`. */
export function hostsDir(registryHost: string): string {
    return `${CONTAINERD_CERTS_DIR}/${registryHost}`;
}

/**
 * Shell (POSIX sh, run on the laptop) that writes $HOSTS_TOML to $HOSTS_DIR/hosts.toml on
 * every node of kind cluster $CLUSTER_NAME. containerd reads the file on each pull: no restart.
 */
export const WRITE_MIRROR_SCRIPT = `set -eu
nodes=$(kind get nodes --name "$CLUSTER_NAME")
if [ -z "$nodes" ]; then
  echo "kind cluster $CLUSTER_NAME has no nodes" >&2
  exit 1
fi
for node in $nodes; do
  docker exec "$node" mkdir -p "$HOSTS_DIR"
  printf '%s' "$HOSTS_TOML" | docker exec -i "$node" cp /dev/stdin "$HOSTS_DIR/hosts.toml"
done
`;

/**
 * Removes the hosts.toml again on destroy; matters for an adopted cluster, which outlives
 * the stack. Tolerates a cluster that is already gone.
 */
export const REMOVE_MIRROR_SCRIPT = `set -u
for node in $(kind get nodes --name "$CLUSTER_NAME" 2>/dev/null); do
  docker exec "$node" rm -f "$HOSTS_DIR/hosts.toml" || true
done
`;
