import * as fs from "fs";
import * as path from "path";
import { parse as parseYaml } from "yaml";
import {
    CREATE_CLUSTER_SCRIPT,
    DELETE_CLUSTER_SCRIPT,
    EXISTING_KUBECONFIG_SCRIPT,
} from "../components/kindCluster";
import { renderKindConfig } from "../components/kindConfig";
import { hostsDir, hostsToml, REMOVE_MIRROR_SCRIPT, WRITE_MIRROR_SCRIPT } from "../components/mirror";
import { KIND_LOAD_SCRIPT } from "../components/registryImage";
import { tempDir } from "./helpers/processes";
import { runShell, ShimDir } from "./helpers/shims";

// The shell snippets the stack's local.Commands run, executed with fake kind/docker/kubectl.

const NODES = ["hostk8s-control-plane", "hostk8s-worker"];

/** Fake kind: lists $FAKE_NODES, prints a kubeconfig, keeps a copy of --config files. */
const FAKE_KIND = `
case "$1 $2" in
  "get nodes") for n in $FAKE_NODES; do echo "$n"; done ;;
  "get kubeconfig") echo "kubeconfig-of-$4" ;;
  "create cluster")
    while [ $# -gt 0 ]; do [ "$1" = --config ] && cp "$2" "$FAKE_ROOT/kind-config.yaml"; shift; done
    echo "Creating cluster ..." ;;
esac`;

/** Fake docker: `exec [-i] <node> mkdir|cp|rm ...` acts on $FAKE_ROOT/<node>/. */
const FAKE_DOCKER = `
[ "$1" = exec ] || exit 0
shift; [ "$1" = -i ] && shift
node=$1; shift
case "$1" in
  mkdir) mkdir -p "$FAKE_ROOT/$node/$3" ;;
  cp) cat > "$FAKE_ROOT/$node/$3" ;;
  rm) rm -f "$FAKE_ROOT/$node/$3" ;;
esac`;

describe("the stack's node-level commands", () => {
    let shims: ShimDir;
    let root: string;
    const env = (extra: Record<string, string>) => ({
        PATH: shims.path(), FAKE_ROOT: root, FAKE_NODES: NODES.join(" "), ...extra,
    });

    beforeEach(() => {
        shims = new ShimDir().add("kind", FAKE_KIND).add("docker", FAKE_DOCKER)
            .add("kubectl", `echo "kubeconfig-of-context-$7"`);
        root = tempDir("nodes-");
    });
    afterEach(() => {
        shims.remove();
        fs.rmSync(root, { recursive: true, force: true });
    });

    test("cluster creation makes the data directory, passes the kind config and prints only the kubeconfig", () => {
        const kindConfig = renderKindConfig({
            name: "hostk8s", workers: 1, dataDir: path.join(root, "data"), serviceSubnet: "10.96.0.0/16",
            hostPort: 5000, nodePort: 30500,
        });
        const result = runShell(CREATE_CLUSTER_SCRIPT, env({
            CLUSTER_NAME: "hostk8s", DATA_DIR: path.join(root, "data"), KIND_CONFIG: kindConfig,
        }));
        expect(result.status).toBe(0);
        expect(result.stdout).toBe("kubeconfig-of-hostk8s\n");
        expect(fs.statSync(path.join(root, "data")).isDirectory()).toBe(true);
        expect(parseYaml(fs.readFileSync(path.join(root, "kind-config.yaml"), "utf8"))).toEqual(parseYaml(kindConfig));
        expect(shims.calls()).toEqual([
            expect.stringMatching(/^kind create cluster --name hostk8s --config \S+ --wait 120s$/),
            "kind get kubeconfig --name hostk8s",
        ]);
    });

    test("cluster creation stops at the first failing step", () => {
        shims.add("kind", `[ "$1" = create ] && { echo "node(s) already exist" >&2; exit 1; }; echo kubeconfig`);
        const result = runShell(CREATE_CLUSTER_SCRIPT, env({ CLUSTER_NAME: "hostk8s", DATA_DIR: root, KIND_CONFIG: "{}" }));
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/already exist/);
        expect(result.stdout).toBe("");
    });

    test("destroy deletes the kind cluster by name", () => {
        expect(runShell(DELETE_CLUSTER_SCRIPT, env({ CLUSTER_NAME: "hostk8s" })).status).toBe(0);
        expect(shims.calls()).toEqual(["kind delete cluster --name hostk8s"]);
    });

    test("an adopted cluster's kubeconfig is its context, flattened", () => {
        const result = runShell(EXISTING_KUBECONFIG_SCRIPT, env({ KUBE_CONTEXT: "kind-dev" }));
        expect(result.stdout).toBe("kubeconfig-of-context-kind-dev\n");
        expect(shims.calls()).toEqual(["kubectl config view --raw --minify --flatten --context kind-dev"]);
    });

    test("the mirror step writes the exact hosts.toml on every node, and destroy removes it", () => {
        const text = hostsToml("localhost:5000", "http://10.96.0.250:5000");
        const mirrorEnv = env({ CLUSTER_NAME: "hostk8s", HOSTS_DIR: hostsDir("localhost:5000"), HOSTS_TOML: text });
        const write = runShell(WRITE_MIRROR_SCRIPT, mirrorEnv);
        expect(write.status).toBe(0);
        const files = NODES.map((node) => path.join(root, node, "/etc/containerd/certs.d/localhost:5000/hosts.toml"));
        for (const file of files) {
            expect(fs.readFileSync(file, "utf8")).toBe(text);
        }

        expect(runShell(REMOVE_MIRROR_SCRIPT, mirrorEnv).status).toBe(0);
        for (const file of files) {
            expect(fs.existsSync(file)).toBe(false);
        }
    });

    test("the mirror step fails when the cluster has no nodes", () => {
        const result = runShell(WRITE_MIRROR_SCRIPT, { ...env({ CLUSTER_NAME: "gone", HOSTS_DIR: "/x", HOSTS_TOML: "" }), FAKE_NODES: "" });
        expect(result.status).not.toBe(0);
        expect(result.stderr).toMatch(/kind cluster gone has no nodes/);
    });

    test("removing the mirror tolerates a cluster that is already gone", () => {
        shims.add("kind", `echo "ERROR: no nodes found" >&2; exit 1`);
        expect(runShell(REMOVE_MIRROR_SCRIPT, env({ CLUSTER_NAME: "gone", HOSTS_DIR: "/x" })).status).toBe(0);
    });

    test("the image is loaded into the named cluster", () => {
        expect(runShell(KIND_LOAD_SCRIPT, env({ IMAGE: "registry-server:0123456789ab", CLUSTER_NAME: "hostk8s" })).status).toBe(0);
        expect(shims.calls()).toEqual(["kind load docker-image registry-server:0123456789ab --name hostk8s"]);
    });
});
