import * as fs from "fs";
import * as path from "path";
import { mirrorEndpoint, registryEndpoints } from "../../components/endpoints";
import { hostsToml } from "../../components/mirror";
import { DEFAULTS } from "../../components/settings";
import { writeOciLayout } from "../helpers/ociLayout";
import { Daemon, requireTools, run, startDaemon, tempDir, waitFor } from "../helpers/processes";
import { registryUnderTest, startTestRegistry, TestRegistry } from "../helpers/testRegistry";

// The stack's hosts.toml, read by the containerd resolver a kind node runs: a pull of
// `localhost:5000/<repo>:<tag>` must be served by the mirror host it names. Only the mirror's
// address is changed, from the in-cluster ClusterIP to a registry on this machine.

const REPOSITORY = "e2e/mirror-test";

describe(`containerd pulls localhost:5000 images through the stack's hosts.toml; registry: ${registryUnderTest()}`, () => {
    let work: string;
    let socket: string;
    let containerd: Daemon | undefined;
    let registry: TestRegistry | undefined;

    beforeAll(async () => {
        requireTools("containerd", "ctr", "skopeo", "tar");
        if (process.getuid?.() !== 0) {
            throw new Error("this e2e test runs containerd, which needs root");
        }
        work = tempDir("ctrd-");
        socket = path.join(work, "c.sock");
        const config = path.join(work, "config.toml");
        // Own root, state and socket; the CRI plugin off: only the image service is needed.
        fs.writeFileSync(config, [
            "version = 2",
            `root = "${work}/root"`,
            `state = "${work}/state"`,
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
            "[grpc]",
            `  address = "${socket}"`,
            "",
        ].join("\n"));
        containerd = startDaemon("containerd", ["--config", config]);
        registry = await startTestRegistry();
        await waitFor("containerd's socket", 20000, () => {
            if (containerd?.child.exitCode !== null) {
                throw new Error(`containerd exited:\n${containerd?.output()}`);
            }
            return fs.existsSync(socket);
        });
    });

    afterAll(async () => {
        await containerd?.stop();
        await registry?.stop();
        if (work) {
            fs.rmSync(work, { recursive: true, force: true });
        }
    });

    test("a pull of localhost:5000/<repo>:<tag> is answered by the mirror host", async () => {
        if (!registry) {
            throw new Error("no test registry");
        }
        // Push a fresh image (unique digests) to the test registry.
        const tag = `t${Date.now()}`;
        const layout = path.join(work, "layout");
        const image = writeOciLayout(layout, tag);
        run("skopeo", ["--insecure-policy", "copy", "--preserve-digests", "--dest-tls-verify=false",
            `oci:${layout}:${tag}`, `docker://${registry.address}/${REPOSITORY}:${tag}`]);

        // The stack's text, with only the mirror's address pointed at the test registry.
        const { pushEndpoint } = registryEndpoints(DEFAULTS.hostPort, DEFAULTS.nodePort);
        const generated = hostsToml(pushEndpoint, mirrorEndpoint(DEFAULTS.clusterIP));
        const inClusterAddress = `${DEFAULTS.clusterIP}:5000`;
        expect(generated.split(inClusterAddress)).toHaveLength(2);
        const hostsDir = path.join(work, "certs.d");
        fs.mkdirSync(path.join(hostsDir, pushEndpoint), { recursive: true });
        fs.writeFileSync(path.join(hostsDir, pushEndpoint, "hosts.toml"), generated.replace(inClusterAddress, registry.address));

        const reference = `${pushEndpoint}/${REPOSITORY}:${tag}`;
        const ctr = (...args: string[]) => run("ctr", ["--address", socket, "--namespace", "e2e", ...args]);
        ctr("images", "pull", "--hosts-dir", hostsDir, "--snapshotter", "native", reference);

        // containerd recorded exactly the manifest we pushed, under the localhost name.
        const listing = ctr("images", "ls");
        const line = listing.split("\n").find((l) => l.startsWith(`${reference} `));
        expect(line).toBeDefined();
        expect(line).toContain(image.manifestDigest);
        // And unpacked it into the native snapshotter (a kubelet would start it from there).
        expect(ctr("snapshots", "--snapshotter", "native", "ls").trim().split("\n").length).toBeGreaterThan(1);
    });
});
