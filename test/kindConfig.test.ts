import { parse as parseToml } from "smol-toml";
import { parse as parseYaml } from "yaml";
import { CONTAINERD_CONFIG_PATH_PATCH, KindConfigOptions, renderKindConfig } from "../components/kindConfig";

const options: KindConfigOptions = {
    name: "hostk8s",
    workers: 2,
    dataDir: "/home/dev/.local/share/kind-local-registry/hostk8s",
    serviceSubnet: "10.96.0.0/16",
    hostPort: 5000,
    nodePort: 30500,
};

const mount = { hostPath: options.dataDir, containerPath: "/mnt/local-storage/registry" };

/** The rendered file, parsed back the way kind reads it. */
const parsed = (o: KindConfigOptions): any => parseYaml(renderKindConfig(o));

describe("the kind cluster config", () => {
    test("is a kind v1alpha4 Cluster named after the cluster", () => {
        const config = parsed(options);
        expect(config.kind).toBe("Cluster");
        expect(config.apiVersion).toBe("kind.x-k8s.io/v1alpha4");
        expect(config.name).toBe("hostk8s");
    });

    test("sets the service subnet that holds the registry's fixed ClusterIP", () => {
        expect(parsed(options).networking).toEqual({ serviceSubnet: "10.96.0.0/16" });
    });

    test("has one control plane and the configured number of workers", () => {
        expect(parsed(options).nodes.map((n: { role: string }) => n.role)).toEqual(["control-plane", "worker", "worker"]);
        expect(parsed({ ...options, workers: 0 }).nodes.map((n: { role: string }) => n.role)).toEqual(["control-plane"]);
    });

    test("mounts the host data directory at the PV's hostPath on every node", () => {
        for (const node of parsed(options).nodes) {
            expect(node.extraMounts).toEqual([mount]);
        }
    });

    test("publishes the registry NodePort on 127.0.0.1 as 5000 (push) and 30500 (external URL)", () => {
        const [controlPlane, ...workers] = parsed(options).nodes;
        expect(controlPlane.extraPortMappings).toEqual([
            { containerPort: 30500, hostPort: 5000, listenAddress: "127.0.0.1", protocol: "TCP" },
            { containerPort: 30500, hostPort: 30500, listenAddress: "127.0.0.1", protocol: "TCP" },
        ]);
        // A host port can be published once; the control plane holds both.
        for (const worker of workers) {
            expect(worker.extraPortMappings).toBeUndefined();
        }
    });

    test("follows configured ports", () => {
        const [controlPlane] = parsed({ ...options, hostPort: 5001, nodePort: 30501 }).nodes;
        expect(controlPlane.extraPortMappings.map((m: { containerPort: number; hostPort: number }) => [m.containerPort, m.hostPort]))
            .toEqual([[30501, 5001], [30501, 30501]]);
    });

    test("switches containerd to the config_path form of registry configuration", () => {
        const patches: string[] = parsed(options).containerdConfigPatches;
        expect(patches).toEqual([CONTAINERD_CONFIG_PATH_PATCH]);
        expect(parseToml(patches[0])).toEqual({
            plugins: { "io.containerd.grpc.v1.cri": { registry: { config_path: "/etc/containerd/certs.d" } } },
        });
        // The legacy `mirrors` table cannot be combined with config_path (containerd#5304).
        expect(patches[0]).not.toMatch(/mirrors/);
    });

    test("pins the node image on every node only when one is configured", () => {
        expect(parsed(options).nodes.every((n: object) => !("image" in n))).toBe(true);
        const pinned = parsed({ ...options, nodeImage: "kindest/node:v1.33.1" });
        expect(pinned.nodes.map((n: { image: string }) => n.image)).toEqual(Array(3).fill("kindest/node:v1.33.1"));
    });

    test("writes plain YAML without anchors, so every node's mount is spelled out", () => {
        expect(renderKindConfig(options)).not.toMatch(/[&*]a\d/);
    });
});
