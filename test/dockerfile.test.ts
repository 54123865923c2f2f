import * as fs from "fs";
import * as path from "path";
import { parseDockerignore } from "../components/registryImage";
import { REPO_ROOT } from "./helpers/processes";

// No Docker engine here: the Dockerfile is checked by reading it.

const SERVER_DIR = path.join(REPO_ROOT, "registry-server");

interface Instruction {
    readonly keyword: string;
    readonly args: string;
}

interface Stage {
    readonly from: string;
    readonly name?: string;
    readonly instructions: Instruction[];
}

/** Splits a Dockerfile into stages of instructions (continuations joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
    const logical = text
        .split("\n")
        .filter((line) => !/^\s*#/.test(line))
        .join("\n")
        .replace(/\\\n/g, " ")
        .split("\n")
        .map((line) => line.trim())
        .filter((line) => line !== "");
    const stages: Stage[] = [];
    for (const line of logical) {
        const [, keyword, args] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
        if (keyword.toUpperCase() === "FROM") {
            const [from, as, name] = args.split(/\s+/);
            stages.push({ from, name: as?.toUpperCase() === "AS" ? name : undefined, instructions: [] });
        } else if (stages.length === 0) {
            throw new Error(`instruction before FROM: ${line}`);
        } else {
            stages[stages.length - 1].instructions.push({ keyword: keyword.toUpperCase(), args: args.replace(/\s+/g, " ") });
        }
    }
    return stages;
}

const dockerfile = parseDockerfile(fs.readFileSync(path.join(SERVER_DIR, "Dockerfile"), "utf8"));
const [build, runtime] = dockerfile;
const args = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
const serverPackage = JSON.parse(fs.readFileSync(path.join(SERVER_DIR, "package.json"), "utf8"));

describe("registry-server/Dockerfile", () => {
    test("has a build stage and a runtime stage on a pinned Node 20 base, never latest", () => {
        expect(dockerfile).toHaveLength(2);
        expect(build.name).toBe("build");
        for (const stage of dockerfile) {
            expect(stage.from).toMatch(/^node:20(\.[0-9.]+)?-(bookworm-slim|alpine)(@sha256:[0-9a-f]{64})?$/);
        }
    });

    test("the build stage installs all dependencies and compiles with the server's build script", () => {
        expect(args(build, "RUN")).toEqual(expect.arrayContaining([
            expect.stringMatching(/^npm ci\b/),
            "npm run build",
        ]));
        expect(serverPackage.scripts.build).toBe("tsc -p tsconfig.json");
    });

    test("the build stage copies only files that exist and that .dockerignore lets into the context", () => {
        const ignored = parseDockerignore(fs.readFileSync(path.join(SERVER_DIR, ".dockerignore"), "utf8"));
        const sources = args(build, "COPY").flatMap((a) => a.split(" ").slice(0, -1));
        expect(sources).toEqual(["package.json", "package-lock.json", "tsconfig.json", "src"]);
        for (const source of sources) {
            expect(fs.existsSync(path.join(SERVER_DIR, source))).toBe(true);
            expect(ignored(source)).toBe(false);
        }
        for (const excluded of ["node_modules", "dist", "test"]) {
            expect(ignored(excluded)).toBe(true);
        }
    });

    test("the compiled entry point lands where CMD runs it (dist/src/main.js)", () => {
        const tsconfig = JSON.parse(fs.readFileSync(path.join(SERVER_DIR, "tsconfig.json"), "utf8"));
        expect(tsconfig.compilerOptions).toEqual(expect.objectContaining({ rootDir: ".", outDir: "dist" }));
        expect(fs.existsSync(path.join(SERVER_DIR, "src", "main.ts"))).toBe(true);
        expect(serverPackage.main).toBe("dist/src/main.js");
    });

    test("the runtime stage installs production dependencies only and copies dist/src alone", () => {
        expect(args(runtime, "RUN")).toEqual(expect.arrayContaining([expect.stringMatching(/^npm ci --omit=dev\b/)]));
        expect(args(runtime, "RUN").join(" ")).not.toMatch(/npm run build|npm install/);
        expect(args(runtime, "COPY")).toEqual(["package.json package-lock.json ./", "--from=build /app/dist/src ./dist/src"]);
        expect(args(runtime, "WORKDIR")).toEqual(["/app"]);
    });

    test("the runtime stage runs as the non-root user node (uid 1000), set after the last RUN", () => {
        const keywords = runtime.instructions.map((i) => i.keyword);
        expect(args(runtime, "USER")).toEqual(["1000:1000"]);
        expect(keywords.lastIndexOf("USER")).toBeGreaterThan(keywords.lastIndexOf("RUN"));
    });

    test("sets production env, registry:2 variable names and a heap below the 256Mi pod limit", () => {
        // ENV KEY=value pairs; a value may be double-quoted to hold spaces.
        const env = Object.fromEntries(args(runtime, "ENV").flatMap((a) => [...a.matchAll(/(\w+)=(?:"([^"]*)"|(\S+))/g)])
            .map((m) => [m[1], m[2] ?? m[3]]));
        expect(env).toEqual({
            NODE_ENV: "production",
            REGISTRY_HTTP_ADDR: ":5000",
            REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY: "/var/lib/registry",
            NODE_OPTIONS: "--max-old-space-size=160 --max-semi-space-size=1",
            MALLOC_ARENA_MAX: "2",
            MALLOC_MMAP_THRESHOLD_: "131072",
        });
    });

    test("`make start` runs the server with the image's node flags and malloc settings", () => {
        const env = Object.fromEntries(args(runtime, "ENV").flatMap((a) => [...a.matchAll(/(\w+)=(?:"([^"]*)"|(\S+))/g)])
            .map((m) => [m[1], m[2] ?? m[3]]));
        const makefile = fs.readFileSync(path.join(__dirname, "..", "Makefile"), "utf8");
        const variable = (name: string) => new RegExp(`^${name} := (.*)$`, "m").exec(makefile)?.[1];
        expect(variable("NODE_FLAGS")).toBe(env.NODE_OPTIONS);
        expect(variable("MALLOC_ENV")).toBe(`MALLOC_ARENA_MAX=${env.MALLOC_ARENA_MAX} MALLOC_MMAP_THRESHOLD_=${env.MALLOC_MMAP_THRESHOLD_}`);
        expect(makefile).toMatch(/^start:.*\n\tcd \$\(SERVER\) && exec env \$\(MALLOC_ENV\) node \$\(NODE_FLAGS\) dist\/src\/main\.js serve$/m);
    });

    test("exposes 5000, declares the data volume and starts `node dist/src/main.js serve` in exec form", () => {
        expect(args(runtime, "EXPOSE")).toEqual(["5000"]);
        expect(args(runtime, "VOLUME")).toEqual(["/var/lib/registry"]);
        expect(args(runtime, "CMD")).toHaveLength(1);
        expect(JSON.parse(args(runtime, "CMD")[0])).toEqual(["node", "dist/src/main.js", "serve"]);
    });

    test("has no HEALTHCHECK: Kubernetes probes GET /v2/ instead", () => {
        expect(dockerfile.flatMap((s) => args(s, "HEALTHCHECK"))).toEqual([]);
    });
});
