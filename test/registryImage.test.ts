import * as fs from "fs";
import * as path from "path";
import { contentTag, contextDigest, parseDockerignore } from "../components/registryImage";
import { tempDir } from "./helpers/processes";

describe("parseDockerignore", () => {
    const ignored = parseDockerignore("# comment\n\nnode_modules\n/dist/\n*.log\nsrc/**/*.test.ts\ndocs/?.md\n");

    test.each([
        ["node_modules", true],
        ["node_modules/x/index.js", true],
        ["dist/src/main.js", true],
        ["server.log", true],
        ["src/http/router.test.ts", true],
        ["src/router.test.ts", true],
        ["docs/a.md", true],
        ["docs/ab.md", false],
        ["src/main.ts", false],
        ["src/logs/app.ts", false],
        ["distribution.txt", false],
    ])("%s ignored: %s", (file, expected) => {
        expect(ignored(file)).toBe(expected);
    });

    test("rejects negations instead of misreading them", () => {
        expect(() => parseDockerignore("*.md\n!README.md")).toThrow(/negation is not supported: !README.md/);
    });
});

describe("the content tag of a build context", () => {
    let dir: string;
    const write = (file: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        fs.writeFileSync(path.join(dir, file), text);
    };

    beforeEach(() => {
        dir = tempDir("ctx-");
        write("Dockerfile", "FROM scratch\n");
        write("src/main.ts", "console.log(1);\n");
        write(".dockerignore", "node_modules\ndist\n");
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    test("is 12 hex digits and stable for the same content", () => {
        expect(contentTag(dir)).toMatch(/^[0-9a-f]{12}$/);
        expect(contentTag(dir)).toBe(contentTag(dir));
    });

    test("changes when a source file or the Dockerfile changes", () => {
        const before = contextDigest(dir);
        write("src/main.ts", "console.log(2);\n");
        const afterSource = contextDigest(dir);
        write("Dockerfile", "FROM scratch\nCOPY . .\n");
        expect(new Set([before, afterSource, contextDigest(dir)]).size).toBe(3);
    });

    test("changes when a file is renamed, even with the same bytes", () => {
        const before = contextDigest(dir);
        fs.renameSync(path.join(dir, "src/main.ts"), path.join(dir, "src/index.ts"));
        expect(contextDigest(dir)).not.toBe(before);
    });

    test("ignores what .dockerignore keeps out of the context, and .git", () => {
        const before = contextDigest(dir);
        write("node_modules/dep/index.js", "x");
        write("dist/src/main.js", "y");
        write(".git/HEAD", "ref: refs/heads/main\n");
        expect(contextDigest(dir)).toBe(before);
    });
});
