import { runtime } from "@pulumi/pulumi";
import * as os from "os";
import * as path from "path";
import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";
import { CREATE_CLUSTER_SCRIPT, DELETE_CLUSTER_SCRIPT, EXISTING_KUBECONFIG_SCRIPT } from "../components/kindCluster";
import { kindClusterConfig } from "../components/kindConfig";
import { REMOVE_MIRROR_SCRIPT, WRITE_MIRROR_SCRIPT } from "../components/mirror";
import { contentTag, KIND_LOAD_SCRIPT } from "../components/registryImage";
import { isKubernetesResource, validateKubernetesObject } from "./helpers/k8sSchema";
import { REPO_ROOT } from "./helpers/processes";
import { FAKE_IMAGE_ID, FAKE_KUBECONFIG, RecordedResource, RecordingMocks } from "./helpers/pulumiMocks";
import { runStack, StackOutputs } from "./helpers/runStack";

const COMMAND = "command:local:Command";
const SERVER_DIR = path.join(REPO_ROOT, "registry-server");
const IMAGE = `registry-server:${contentTag(SERVER_DIR)}`;
const DATA_DIR = path.join(process.env.XDG_DATA_HOME || path.join(os.homedir(), ".local", "share"), "kind-local-registry", "hostk8s");
const LABELS = {
    "app.kubernetes.io/name": "registry",
    "app.kubernetes.io/instance": "registry",
    "app.kubernetes.io/component": "registry",
    "app.kubernetes.io/part-of": "kind-local-registry",
    "app.kubernetes.io/managed-by": "pulumi",
};

const key = (r: RecordedResource) => `${r.type}::${r.name}`;

describe("the stack with default config (Pulumi mocks)", () => {
    let mocks: RecordingMocks;
    let outputs: StackOutputs;
    const k8s = (kind: string, name: string) => mocks.one(`kubernetes:${kind}`, name).inputs;

    beforeAll(async () => {
        ({ mocks, outputs } = await runStack());
    });

    test("creates exactly the expected resources, each type and name once", () => {
        const keys = mocks.resources.map(key);
        expect(new Set(keys).size).toBe(keys.length);
        expect([...keys].sort()).toEqual([
            "command:local:Command::cluster-create",
            "command:local:Command::cluster-mirror",
            "command:local:Command::registry-image-load",
            "docker:index/image:Image::registry-image",
            "kind-local-registry:index:KindCluster::cluster",
            "kind-local-registry:index:Registry::registry",
            "kind-local-registry:index:RegistryImage::registry-image",
            "kubernetes:apps/v1:Deployment::registry-deployment",
            "kubernetes:core/v1:ConfigMap::registry-hosting",
            "kubernetes:core/v1:Namespace::registry-namespace",
            "kubernetes:core/v1:PersistentVolume::registry-pv",
            "kubernetes:core/v1:PersistentVolumeClaim::registry-pvc",
            "kubernetes:core/v1:Service::registry-nodeport",
            "kubernetes:core/v1:Service::registry-service",
            "pulumi:providers:kubernetes::cluster-provider",
        ]);
        // Kubernetes object names are explicit (no Pulumi auto-naming suffix) and unique per kind.
        const objects = mocks.resources.filter(isKubernetesResource)
            .map((r) => `${r.inputs.kind}/${r.inputs.metadata.namespace ?? ""}/${r.inputs.metadata.name}`);
        expect(new Set(objects).size).toBe(objects.length);
    });

    test("a second run of the program declares the same resources with identical inputs (a no-op update)", async () => {
        const again = await runStack();
        const byKey = (m: RecordingMocks) => Object.fromEntries(m.resources.map((r) => [key(r), r.inputs]));
        expect(byKey(again.mocks)).toEqual(byKey(mocks));
        expect(again.mocks.resources).toHaveLength(mocks.resources.length);
    });

    test("every Kubernetes object is valid against the Kubernetes schema", () => {
        const objects = mocks.resources.filter(isKubernetesResource);
        expect(objects).toHaveLength(7);
        for (const object of objects) {
            expect(() => validateKubernetesObject(object)).not.toThrow();
        }
    });

    test("the schema check catches a broken object (so the check above can fail)", () => {
        const deployment = mocks.one("kubernetes:apps/v1:Deployment", "registry-deployment");
        const broken = { ...deployment, inputs: { ...deployment.inputs, spec: { ...deployment.inputs.spec, replicas: "one" } } };
        expect(() => validateKubernetesObject(broken)).toThrow(/replicas/);
    });

    test("every Kubernetes object goes through the kind cluster's provider", () => {
        for (const object of mocks.resources.filter(isKubernetesResource)) {
            expect(object.provider).toMatch(/::cluster-provider::cluster-provider-id$/);
        }
        // The provider receives the kubeconfig as a secret.
        expect(mocks.one("pulumi:providers:kubernetes", "cluster-provider").inputs.kubeconfig)
            .toEqual({ [runtime.specialSigKey]: runtime.specialSecretSig, value: FAKE_KUBECONFIG });
    });

    test("namespace registry", () => {
        expect(k8s("core/v1:Namespace", "registry-namespace").metadata).toEqual({ name: "registry", labels: LABELS });
    });

    test("PV registry-data-pv: 10Gi hostPath on the nodes' mount, Retain, no StorageClass, reserved for the claim", () => {
        const pv = k8s("core/v1:PersistentVolume", "registry-pv");
        expect(pv.metadata).toEqual({ name: "registry-data-pv", labels: LABELS });
        expect(pv.spec).toEqual({
            capacity: { storage: "10Gi" },
            accessModes: ["ReadWriteOnce"],
            persistentVolumeReclaimPolicy: "Retain",
            storageClassName: "",
            claimRef: { namespace: "registry", name: "registry-data" },
            hostPath: { path: "/mnt/local-storage/registry", type: "DirectoryOrCreate" },
        });
    });

    test("PVC registry-data binds the PV by volumeName", () => {
        const pvc = k8s("core/v1:PersistentVolumeClaim", "registry-pvc");
        expect(pvc.metadata).toEqual({ name: "registry-data", namespace: "registry", labels: LABELS });
        expect(pvc.spec).toEqual({
            accessModes: ["ReadWriteOnce"],
            storageClassName: "",
            volumeName: "registry-data-pv",
            resources: { requests: { storage: "10Gi" } },
        });
    });

    describe("Deployment registry", () => {
        const deployment = () => k8s("apps/v1:Deployment", "registry-deployment");
        const pod = () => deployment().spec.template.spec;
        const container = () => pod().containers[0];

        test("one replica in namespace registry, recreated on rollout, selecting its own pods", () => {
            const d = deployment();
            expect(d.metadata).toEqual({ name: "registry", namespace: "registry", labels: LABELS });
            expect(d.spec.replicas).toBe(1);
            expect(d.spec.strategy).toEqual({ type: "Recreate" });
            expect(d.spec.selector.matchLabels).toEqual({
                "app.kubernetes.io/name": "registry", "app.kubernetes.io/instance": "registry",
            });
            expect(d.spec.template.metadata.labels).toEqual(expect.objectContaining(d.spec.selector.matchLabels));
        });

        test("runs the content-tagged registry-server image that kind loaded, never pulling it", () => {
            expect(IMAGE).toMatch(/^registry-server:[0-9a-f]{12}$/);
            expect(pod().containers).toHaveLength(1);
            expect(container().name).toBe("registry");
            expect(container().image).toBe(IMAGE);
            expect(container().imagePullPolicy).toBe("IfNotPresent");
        });

        test("listens on port 5000 named http with registry:2's environment", () => {
            expect(container().ports).toEqual([{ name: "http", containerPort: 5000, protocol: "TCP" }]);
            expect(container().env).toEqual([
                { name: "REGISTRY_HTTP_ADDR", value: ":5000" },
                { name: "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", value: "/var/lib/registry" },
                { name: "REGISTRY_STORAGE_DELETE_ENABLED", value: "true" },
                { name: "REGISTRY_LOG_LEVEL", value: "info" },
            ]);
        });

        test("limits 256Mi/200m and requests 128Mi/100m", () => {
            expect(container().resources).toEqual({
                limits: { memory: "256Mi", cpu: "200m" },
                requests: { memory: "128Mi", cpu: "100m" },
            });
        });

        test("readiness and liveness probe GET /v2/ on port http", () => {
            for (const probe of [container().readinessProbe, container().livenessProbe]) {
                expect(probe.httpGet).toEqual({ path: "/v2/", port: "http" });
                expect(probe.timeoutSeconds).toBeGreaterThan(0);
            }
        });

        test("runs as uid 1000 on a read-only root filesystem without privilege escalation", () => {
            expect(container().securityContext).toEqual({
                runAsNonRoot: true,
                runAsUser: 1000,
                runAsGroup: 1000,
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"] },
            });
            expect(pod().securityContext).toEqual(expect.objectContaining({ runAsNonRoot: true, runAsUser: 1000 }));
        });

        test("keeps its data on the PVC at /var/lib/registry", () => {
            expect(container().volumeMounts).toEqual(expect.arrayContaining([{ name: "data", mountPath: "/var/lib/registry" }]));
            expect(pod().volumes).toEqual(expect.arrayContaining([
                { name: "data", persistentVolumeClaim: { claimName: "registry-data" } },
            ]));
        });

        test("hands the data directory to uid 1000 first, with CHOWN as its only write power", () => {
            const [init] = pod().initContainers;
            expect(init.image).toBe(IMAGE);
            expect(init.command.join(" ")).toMatch(/-exec chown 1000:1000 \{\} \+$/);
            expect(init.volumeMounts).toEqual([{ name: "data", mountPath: "/var/lib/registry" }]);
            expect(init.securityContext).toEqual(expect.objectContaining({
                readOnlyRootFilesystem: true,
                allowPrivilegeEscalation: false,
                capabilities: { drop: ["ALL"], add: ["CHOWN", "DAC_READ_SEARCH"] },
            }));
        });
    });

    test("Service registry: ClusterIP 10.96.0.250:5000, the address the nodes' hosts.toml names", () => {
        const service = k8s("core/v1:Service", "registry-service");
        expect(service.metadata).toEqual({ name: "registry", namespace: "registry", labels: LABELS });
        expect(service.spec).toEqual({
            type: "ClusterIP",
            clusterIP: "10.96.0.250",
            selector: { "app.kubernetes.io/name": "registry", "app.kubernetes.io/instance": "registry" },
            ports: [{ name: "http", port: 5000, targetPort: "http", protocol: "TCP" }],
        });
        const hosts = parseToml(mocks.one(COMMAND, "cluster-mirror").inputs.environment.HOSTS_TOML);
        expect(Object.keys(hosts.host as object)).toEqual([`http://${service.spec.clusterIP}:${service.spec.ports[0].port}`]);
    });

    test("Service registry-nodeport: NodePort 30500, the port the kind config publishes", () => {
        const service = k8s("core/v1:Service", "registry-nodeport");
        expect(service.metadata).toEqual({ name: "registry-nodeport", namespace: "registry", labels: LABELS });
        expect(service.spec).toEqual({
            type: "NodePort",
            selector: { "app.kubernetes.io/name": "registry", "app.kubernetes.io/instance": "registry" },
            ports: [{ name: "http", port: 5000, targetPort: "http", protocol: "TCP", nodePort: 30500 }],
        });
    });

    test("ConfigMap kube-public/local-registry-hosting advertises the registry (KEP-1755)", () => {
        const configMap = k8s("core/v1:ConfigMap", "registry-hosting");
        expect(configMap.metadata).toEqual({ name: "local-registry-hosting", namespace: "kube-public", labels: LABELS });
        expect(Object.keys(configMap.data)).toEqual(["localRegistryHosting.v1"]);
        expect(parseYaml(configMap.data["localRegistryHosting.v1"])).toEqual({
            host: "localhost:5000",
            hostFromContainerRuntime: "localhost:5000",
            hostFromClusterNetwork: "registry.registry.svc.cluster.local:5000",
            help: "https://kind.sigs.k8s.io/docs/user/local-registry/",
        });
    });

    test("creates kind cluster hostk8s from the generated config and deletes it on destroy", () => {
        const create = mocks.one(COMMAND, "cluster-create").inputs;
        expect(create.create).toBe(CREATE_CLUSTER_SCRIPT);
        expect(create.delete).toBe(DELETE_CLUSTER_SCRIPT);
        expect(create.environment.CLUSTER_NAME).toBe("hostk8s");
        expect(create.environment.DATA_DIR).toBe(DATA_DIR);
        expect(parseYaml(create.environment.KIND_CONFIG)).toEqual(kindClusterConfig({
            name: "hostk8s", workers: 0, dataDir: DATA_DIR, serviceSubnet: "10.96.0.0/16", hostPort: 5000, nodePort: 30500,
        }));
        expect(create.triggers).toEqual([create.environment.KIND_CONFIG]);
        // stdout is the kubeconfig: kept out of the logs.
        expect(create.logging).toBe("stderr");
    });

    test("writes the mirror's hosts.toml for localhost:5000 on the nodes after the cluster exists", () => {
        const mirror = mocks.one(COMMAND, "cluster-mirror").inputs;
        expect(mirror.create).toBe(WRITE_MIRROR_SCRIPT);
        expect(mirror.delete).toBe(REMOVE_MIRROR_SCRIPT);
        expect(mirror.environment.CLUSTER_NAME).toBe("hostk8s");
        expect(mirror.environment.HOSTS_DIR).toBe("/etc/containerd/certs.d/localhost:5000");
        expect(parseToml(mirror.environment.HOSTS_TOML)).toEqual({
            server: "http://localhost:5000",
            host: { "http://10.96.0.250:5000": { capabilities: ["pull", "resolve"] } },
        });
        expect(mirror.triggers).toEqual(["cluster-create-id", mirror.environment.HOSTS_TOML]);
    });

    test("builds registry-server/ locally, tagged by content, and loads it into the cluster's nodes", () => {
        const image = mocks.one("docker:index/image:Image", "registry-image").inputs;
        expect(image.imageName).toBe(IMAGE);
        expect(image.skipPush).toBe(true);
        expect(image.build).toEqual(expect.objectContaining({
            context: SERVER_DIR,
            dockerfile: path.join(SERVER_DIR, "Dockerfile"),
        }));
        const load = mocks.one(COMMAND, "registry-image-load").inputs;
        expect(load.create).toBe(KIND_LOAD_SCRIPT);
        expect(load.environment).toEqual({ IMAGE, CLUSTER_NAME: "hostk8s" });
        // Reloaded when the image or the cluster changes.
        expect(load.triggers).toEqual([FAKE_IMAGE_ID, "cluster-create-id"]);
    });

    test("exports the outputs CI reads, with the kubeconfig as a secret", () => {
        expect(outputs).toEqual({
            clusterName: "hostk8s",
            kubeconfig: FAKE_KUBECONFIG,
            kubeconfigIsSecret: true,
            pushEndpoint: "localhost:5000",
            externalUrl: "http://localhost:30500",
            inClusterEndpoint: "registry.registry.svc.cluster.local:5000",
            catalogUrl: "http://localhost:5000/v2/_catalog",
            manifestUrlTemplate: "http://localhost:5000/v2/{repository}/manifests/{reference}",
            registryImage: IMAGE,
        });
    });
});

describe("the stack with config overrides (Pulumi mocks)", () => {
    test("worker count, ports, cluster IP, storage, resources and extraEnv flow into every resource", async () => {
        const { mocks, outputs } = await runStack({
            "cluster:name": "dev",
            "cluster:workers": "2",
            "cluster:dataDir": "/srv/registry-data",
            "cluster:serviceSubnet": "10.100.0.0/16",
            "registry:hostPort": "5001",
            "registry:nodePort": "30501",
            "registry:clusterIP": "10.100.0.99",
            "registry:storageSize": "2Gi",
            "registry:resources": JSON.stringify({ limits: { memory: "512Mi" } }),
            "registry:extraEnv": JSON.stringify({ REGISTRY_GC_ENABLED: "true" }),
        });
        const kindConfig = parseYaml(mocks.one(COMMAND, "cluster-create").inputs.environment.KIND_CONFIG);
        expect(kindConfig.name).toBe("dev");
        expect(kindConfig.networking.serviceSubnet).toBe("10.100.0.0/16");
        expect(kindConfig.nodes).toHaveLength(3);
        expect(kindConfig.nodes[0].extraPortMappings.map((m: { hostPort: number }) => m.hostPort)).toEqual([5001, 30501]);
        expect(kindConfig.nodes[2].extraMounts[0].hostPath).toBe("/srv/registry-data");

        const mirror = mocks.one(COMMAND, "cluster-mirror").inputs.environment;
        expect(mirror.HOSTS_DIR).toBe("/etc/containerd/certs.d/localhost:5001");
        expect(Object.keys(parseToml(mirror.HOSTS_TOML).host as object)).toEqual(["http://10.100.0.99:5000"]);

        const deployment = mocks.one("kubernetes:apps/v1:Deployment", "registry-deployment").inputs;
        const container = deployment.spec.template.spec.containers[0];
        expect(container.env).toContainEqual({ name: "REGISTRY_GC_ENABLED", value: "true" });
        expect(container.resources.limits).toEqual({ memory: "512Mi", cpu: "200m" });
        expect(mocks.one("kubernetes:core/v1:PersistentVolume", "registry-pv").inputs.spec.capacity.storage).toBe("2Gi");
        expect(mocks.one("kubernetes:core/v1:Service", "registry-service").inputs.spec.clusterIP).toBe("10.100.0.99");
        expect(mocks.one("kubernetes:core/v1:Service", "registry-nodeport").inputs.spec.ports[0].nodePort).toBe(30501);
        const hosting = parseYaml(mocks.one("kubernetes:core/v1:ConfigMap", "registry-hosting").inputs.data["localRegistryHosting.v1"]);
        expect(hosting.host).toBe("localhost:5001");

        expect(outputs).toEqual(expect.objectContaining({
            clusterName: "dev",
            pushEndpoint: "localhost:5001",
            externalUrl: "http://localhost:30501",
            catalogUrl: "http://localhost:5001/v2/_catalog",
        }));
        for (const object of mocks.resources.filter(isKubernetesResource)) {
            expect(() => validateKubernetesObject(object)).not.toThrow();
        }
    });

    test("the typed maintenance keys set exactly their variables in the Deployment's container env", async () => {
        const { mocks } = await runStack({
            "registry:gc": JSON.stringify({ interval: "6h", deleteUntagged: true }),
            "registry:retention": JSON.stringify([
                { repositories: "team/*", keepLast: 5, keepTags: "^v\\d" },
                { repositories: "**", olderThan: "14d", keepLast: 1 },
            ]),
            "registry:quota": "8GiB",
            "registry:logLevel": "debug",
        });
        const deployment = mocks.one("kubernetes:apps/v1:Deployment", "registry-deployment");
        expect(deployment.inputs.spec.template.spec.containers[0].env).toEqual([
            { name: "REGISTRY_HTTP_ADDR", value: ":5000" },
            { name: "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", value: "/var/lib/registry" },
            { name: "REGISTRY_STORAGE_DELETE_ENABLED", value: "true" },
            // registry:logLevel replaces the default in place.
            { name: "REGISTRY_LOG_LEVEL", value: "debug" },
            { name: "REGISTRY_GC_INTERVAL", value: "6h" },
            { name: "REGISTRY_GC_DELETEUNTAGGED", value: "true" },
            {
                name: "REGISTRY_RETENTION_POLICIES",
                value: '[{"repositories":"team/*","keepLast":5,"keepTags":"^v\\\\d"},{"repositories":"**","keepLast":1,"olderThan":"14d"}]',
            },
            { name: "REGISTRY_STORAGE_QUOTA", value: "8GiB" },
        ]);
        expect(() => validateKubernetesObject(deployment)).not.toThrow();
    });

    test("an existing cluster is adopted by kubeconfig context instead of created", async () => {
        const { mocks, outputs } = await runStack({ "cluster:name": "dev", "cluster:existingContext": "kind-dev" });
        const commands = mocks.ofType(COMMAND).map((r) => r.name).sort();
        expect(commands).toEqual(["cluster-kubeconfig", "cluster-mirror", "registry-image-load"]);
        const kubeconfig = mocks.one(COMMAND, "cluster-kubeconfig").inputs;
        expect(kubeconfig.create).toBe(EXISTING_KUBECONFIG_SCRIPT);
        expect(kubeconfig.environment).toEqual({ KUBE_CONTEXT: "kind-dev" });
        // Destroy must leave an adopted cluster alone.
        expect(kubeconfig.delete).toBeUndefined();
        expect(mocks.one(COMMAND, "cluster-mirror").inputs.environment.CLUSTER_NAME).toBe("dev");
        expect(mocks.one(COMMAND, "registry-image-load").inputs.environment.CLUSTER_NAME).toBe("dev");
        expect(outputs.kubeconfig).toBe(FAKE_KUBECONFIG);
        expect(outputs.kubeconfigIsSecret).toBe(true);
        expect(mocks.resources.filter(isKubernetesResource)).toHaveLength(7);
    });

    test("invalid config fails the program, naming the offending key", async () => {
        await expect(runStack({ "registry:clusterIP": "192.168.1.10" })).rejects.toThrow(/outside cluster:serviceSubnet/);
        await expect(runStack({ "registry:gc": JSON.stringify({ interval: "6" }) })).rejects.toThrow(/registry:gc.interval must be a duration/);
    });
});
