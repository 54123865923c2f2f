import * as fs from "fs";
import * as path from "path";
import { REPO_ROOT, run, tempDir } from "./helpers/processes";
import { runScript, ShimDir } from "./helpers/shims";

const STACK_SH = path.join(REPO_ROOT, "scripts", "stack.sh");
const BUILD_APP_SH = path.join(REPO_ROOT, "scripts", "build-app.sh");

describe("scripts/stack.sh", () => {
    let shims: ShimDir;
    let repo: string;
    let script: string;

    beforeEach(() => {
        shims = new ShimDir();
        // A copy in a scratch "repository", so the default state directory lands there.
        repo = tempDir("repo-");
        fs.mkdirSync(path.join(repo, "scripts"));
        script = path.join(repo, "scripts", "stack.sh");
        fs.copyFileSync(STACK_SH, script);
    });
    afterEach(() => {
        shims.remove();
        fs.rmSync(repo, { recursive: true, force: true });
    });

    test("names each missing tool on its own line and exits non-zero", () => {
        const result = runScript(script, ["up"], { PATH: shims.dir });
        expect(result.status).toBe(1);
        expect(result.stderr.trimEnd().split("\n")).toEqual([
            expect.stringMatching(/^missing: docker is not installed \(https:\S+\)$/),
            expect.stringMatching(/^missing: kind is not installed \(https:\S+\)$/),
            expect.stringMatching(/^missing: pulumi is not installed \(https:\S+\)$/),
            expect.stringMatching(/^missing: node is not installed \(.*\)$/),
        ]);
        expect(result.stdout).toBe("");
    });

    test("names only what is missing", () => {
        shims.add("docker").add("pulumi").add("node");
        const result = runScript(script, ["up"], { PATH: shims.dir });
        expect(result.status).toBe(1);
        expect(result.stderr.trimEnd().split("\n")).toEqual([expect.stringMatching(/^missing: kind is not installed/)]);
    });

    test("says so when docker is installed but no engine answers", () => {
        shims.add("docker", "exit 1").add("kind").add("pulumi").add("node");
        const result = runScript(script, ["up"], { PATH: shims.path() });
        expect(result.status).toBe(1);
        expect(result.stderr).toMatch(/no Docker engine answers/);
        expect(shims.calls()).toEqual(["docker info"]);
    });

    describe("with every tool present", () => {
        beforeEach(() => {
            shims.add("docker").add("kind").add("node")
                .add("pulumi", 'echo "env $PULUMI_BACKEND_URL $PULUMI_CONFIG_PASSPHRASE" >> "$log"');
        });

        test("up selects (or creates) stack dev and runs pulumi up on a file backend inside the repository", () => {
            const result = runScript(script, ["up"], { PATH: shims.path() });
            expect(result.status).toBe(0);
            const backend = `file://${fs.realpathSync(repo)}/.pulumi-state`;
            expect(shims.calls()).toEqual([
                "docker info",
                "pulumi stack select --create dev --non-interactive",
                `env ${backend} kind-local-registry-dev`,
                "pulumi up --yes --non-interactive --stack dev",
                `env ${backend} kind-local-registry-dev`,
            ]);
            expect(fs.statSync(path.join(repo, ".pulumi-state")).isDirectory()).toBe(true);
        });

        test("down runs pulumi destroy; STACK, backend and passphrase can be overridden", () => {
            const result = runScript(script, ["down", "--diff"], {
                PATH: shims.path(), STACK: "ci", PULUMI_BACKEND_URL: "file:///tmp/elsewhere", PULUMI_CONFIG_PASSPHRASE: "team-passphrase",
            });
            expect(result.status).toBe(0);
            expect(shims.calls().filter((c) => c.startsWith("pulumi") || c.startsWith("env"))).toEqual([
                "pulumi stack select --create ci --non-interactive",
                "env file:///tmp/elsewhere team-passphrase",
                "pulumi destroy --yes --non-interactive --stack ci --diff",
                "env file:///tmp/elsewhere team-passphrase",
            ]);
        });

        test("check only reports", () => {
            const result = runScript(script, ["check"], { PATH: shims.path() });
            expect(result.status).toBe(0);
            expect(shims.calls()).toEqual(["docker info"]);
        });

        test("rejects an unknown action", () => {
            const result = runScript(script, ["deploy"], { PATH: shims.path() });
            expect(result.status).toBe(2);
            expect(result.stderr).toMatch(/^usage: scripts\/stack.sh up\|down\|preview\|check/);
        });
    });
});

describe("scripts/build-app.sh with a Docker engine (fake docker)", () => {
    let shims: ShimDir;
    let work: string;
    const app = (name: string, files: Record<string, string>) => {
        const dir = path.join(work, name);
        fs.mkdirSync(dir, { recursive: true });
        for (const [file, text] of Object.entries(files)) {
            fs.writeFileSync(path.join(dir, file), text);
        }
        return dir;
    };
    const env = (extra: Record<string, string> = {}) => ({ PATH: shims.path(), TAG: "t1", ...extra });

    beforeEach(() => {
        shims = new ShimDir().add("docker");
        work = tempDir("apps-");
    });
    afterEach(() => {
        shims.remove();
        fs.rmSync(work, { recursive: true, force: true });
    });

    test("builds with buildx, tags <registry>/<dir name>:<tag> and :latest, pushes both", () => {
        const dir = app("My_App", { Dockerfile: "FROM scratch\n" });
        const result = runScript(BUILD_APP_SH, [dir], env());
        expect(result.status).toBe(0);
        expect(result.stdout).toBe("localhost:5000/my_app:t1\nlocalhost:5000/my_app:latest\n");
        expect(shims.calls()).toEqual([
            "docker info",
            "docker buildx version",
            `docker buildx build --load -f ${dir}/Dockerfile -t localhost:5000/my_app:t1 -t localhost:5000/my_app:latest ${dir}`,
            "docker push localhost:5000/my_app:t1",
            "docker push localhost:5000/my_app:latest",
        ]);
    });

    test("falls back to docker build without buildx, and honours REGISTRY", () => {
        shims.add("docker", '[ "$1" = buildx ] && exit 1; exit 0');
        const dir = app("web", { Containerfile: "FROM scratch\n" });
        const result = runScript(BUILD_APP_SH, [dir], env({ REGISTRY: "127.0.0.1:5999" }));
        expect(result.status).toBe(0);
        expect(shims.calls()).toContain(
            `docker build -f ${dir}/Containerfile -t 127.0.0.1:5999/web:t1 -t 127.0.0.1:5999/web:latest ${dir}`);
        expect(result.stdout).toBe("127.0.0.1:5999/web:t1\n127.0.0.1:5999/web:latest\n");
    });

    test("tags with the git short sha of the app's checkout when TAG is unset", () => {
        const dir = app("api", { Dockerfile: "FROM scratch\n" });
        const git = (...args: string[]) => run("git", ["-C", dir, ...args]).trim();
        git("init", "-q");
        git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "--allow-empty", "-m", "x");
        const sha = git("rev-parse", "--short", "HEAD");
        const result = runScript(BUILD_APP_SH, [dir], { PATH: shims.path() });
        expect(result.status).toBe(0);
        expect(result.stdout).toBe(`localhost:5000/api:${sha}\nlocalhost:5000/api:latest\n`);
    });

    test("tags with a UTC timestamp outside a git checkout", () => {
        const dir = app("api", { Dockerfile: "FROM scratch\n" });
        const result = runScript(BUILD_APP_SH, [dir], { PATH: shims.path() });
        expect(result.stdout).toMatch(/^localhost:5000\/api:[0-9]{14}\nlocalhost:5000\/api:latest\n$/);
    });

    test("builds a compose project and pushes its single built service as <dir name>", () => {
        const config = JSON.stringify({ name: "shop", services: { web: { build: { context: "." } }, db: { image: "postgres:16" } } });
        shims.add("docker", `[ "$1 $4" = "compose config" ] && echo '${config}'; exit 0`);
        const dir = app("shop", { "compose.yaml": "services: {}\n" });
        const result = runScript(BUILD_APP_SH, [dir], env());
        expect(result.status).toBe(0);
        expect(shims.calls()).toEqual([
            "docker info",
            `docker compose -f ${dir}/compose.yaml build`,
            `docker compose -f ${dir}/compose.yaml config --format json`,
            "docker tag shop-web localhost:5000/shop:t1",
            "docker tag shop-web localhost:5000/shop:latest",
            "docker push localhost:5000/shop:t1",
            "docker push localhost:5000/shop:latest",
        ]);
    });

    test("names several built compose services <dir name>-<service>", () => {
        const config = JSON.stringify({
            name: "shop", services: { web: { build: {} }, worker: { build: {}, image: "custom/worker:dev" } },
        });
        shims.add("docker", `[ "$1 $4" = "compose config" ] && echo '${config}'; exit 0`);
        const dir = app("shop", { "docker-compose.yml": "services: {}\n", Dockerfile: "FROM scratch\n" });
        const result = runScript(BUILD_APP_SH, [dir], env());
        expect(result.status).toBe(0);
        expect(result.stdout.trimEnd().split("\n")).toEqual([
            "localhost:5000/shop-web:t1", "localhost:5000/shop-web:latest",
            "localhost:5000/shop-worker:t1", "localhost:5000/shop-worker:latest",
        ]);
        expect(shims.calls()).toContain("docker tag custom/worker:dev localhost:5000/shop-worker:t1");
    });

    test("fails clearly without a directory, a Dockerfile, or any builder", () => {
        expect(runScript(BUILD_APP_SH, [], env()).stderr).toMatch(/usage: scripts\/build-app.sh path\/to\/app/);
        expect(runScript(BUILD_APP_SH, [path.join(work, "nope")], env()).stderr).toMatch(/not a directory/);
        const empty = app("empty", {});
        const noDockerfile = runScript(BUILD_APP_SH, [empty], env());
        expect(noDockerfile.status).not.toBe(0);
        expect(noDockerfile.stderr).toMatch(/no Dockerfile, Containerfile or compose file/);

        // PATH without buildah: the shim directory alone, with the few tools the script needs.
        shims.add("docker", "exit 1").link("basename", "tr", "sed");
        const noBuilder = runScript(BUILD_APP_SH, [app("x", { Dockerfile: "FROM scratch\n" })], { PATH: shims.dir, TAG: "t" });
        expect(noBuilder.status).not.toBe(0);
        expect(noBuilder.stderr).toMatch(/no Docker engine answers \(docker info failed\) and buildah is not installed/);
    });
});
