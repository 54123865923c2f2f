import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT, requireTools, tempDir } from "../helpers/processes";
import { runScript, ShimDir } from "../helpers/shims";
import { listTags, registryUnderTest, startTestRegistry, TestRegistry } from "../helpers/testRegistry";

// `make build APP=...` where no Docker engine answers: scripts/build-app.sh builds with real
// buildah and pushes to a real registry over plain HTTP.

describe(`scripts/build-app.sh without a Docker engine (real buildah); registry: ${registryUnderTest()}`, () => {
    let work: string;
    let shims: ShimDir;
    let registry: TestRegistry | undefined;

    beforeAll(async () => {
        requireTools("buildah");
        work = tempDir("build-");
        // A docker whose engine does not answer, whatever this machine has.
        shims = new ShimDir().add("docker", "exit 1");
        registry = await startTestRegistry();
    });

    afterAll(async () => {
        await registry?.stop();
        shims?.remove();
        if (work) {
            fs.rmSync(work, { recursive: true, force: true });
        }
    });

    test("builds FROM scratch + COPY, pushes <dir name>:<tag> and :latest, and the registry lists both", async () => {
        if (!registry) {
            throw new Error("no test registry");
        }
        const app = path.join(work, "hello-app");
        fs.mkdirSync(app);
        fs.writeFileSync(path.join(app, "Dockerfile"), "FROM scratch\nCOPY hello.txt /hello.txt\n");
        fs.writeFileSync(path.join(app, "hello.txt"), "hello\n");

        const result = runScript(path.join(REPO_ROOT, "scripts", "build-app.sh"), [app], {
            PATH: shims.path(),
            HOME: work,
            REGISTRY: registry.address,
            BUILDAH_ROOT: path.join(work, "storage"),
            BUILDAH_RUNROOT: path.join(work, "run"),
        });
        if (result.status !== 0) {
            throw new Error(`build-app.sh failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
        }
        expect(result.stderr).toMatch(/no Docker engine answers; building with buildah/);
        const refs = result.stdout.trimEnd().split("\n");
        expect(refs).toEqual([
            expect.stringMatching(new RegExp(`^${registry.address}/hello-app:[0-9]{14}$`)),
            `${registry.address}/hello-app:latest`,
        ]);
        const tags = await listTags(registry.address, "hello-app");
        expect(tags.sort()).toEqual([refs[0].split(":").pop(), "latest"].sort());
    });
});
