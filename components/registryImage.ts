import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";

/** Entries never part of the build context, whatever .dockerignore says. */
const ALWAYS_IGNORED = [".git"];

/**
 * Compiles the patterns of a .dockerignore file into a predicate over context-relative
 * paths. Supports comments, `*`, `?` and `**`; a pattern also excludes what lies below a
 * matched directory. Negations (`!`) are rejected rather than silently misread.
 */
export function parseDockerignore(text: string): (relativePath: string) => boolean {
    const patterns = text
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter((line) => line !== "" && !line.startsWith("#"))
        .map((line) => {
            if (line.startsWith("!")) {
                throw new Error(`.dockerignore negation is not supported: ${line}`);
            }
            return globToRegExp(line.replace(/^\/+/, "").replace(/\/+$/, ""));
        });
    return (relativePath) => patterns.some((re) => re.test(relativePath));
}

function globToRegExp(glob: string): RegExp {
    let source = "";
    for (let i = 0; i < glob.length; i++) {
        const c = glob[i];
        if (c === "*" && glob[i + 1] === "*") {
            source += ".*";
            i += glob[i + 2] === "/" ? 2 : 1;
        } else if (c === "*") {
            source += "[^/]*";
        } else if (c === "?") {
            source += "[^/]";
        } else {
            source += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
        }
    }
    return new RegExp(`^${source}(/.*)?$`);
}

/**
 * sha256 over the build context (paths and bytes, sorted, minus .dockerignore): the image
 * tag, so the Deployment rolls exactly when the registry's code or Dockerfile changes.
 */
export function contextDigest(contextDir: string): string {
    const ignorePath = path.join(contextDir, ".dockerignore");
    const ignored = parseDockerignore(
        [...ALWAYS_IGNORED, fs.existsSync(ignorePath) ? fs.readFileSync(ignorePath, "utf8") : ""].join("\n"));
    const hash = createHash("sha256");
    const walk = (relativeDir: string): void => {
        const entries = fs.readdirSync(path.join(contextDir, relativeDir), { withFileTypes: true })
            .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        for (const entry of entries) {
            const relative = relativeDir === "" ? entry.name : `${relativeDir}/${entry.name}`;
            if (ignored(relative)) {
                continue;
            }
            if (entry.isDirectory()) {
                walk(relative);
            } else if (entry.isFile()) {
                hash.update(relative).update("\0").update(fs.readFileSync(path.join(contextDir, relative))).update("\0");
            }
        }
    };
    walk("");
    return hash.digest("hex");
}

/** Image tag derived from the build context's content: never `latest`. */
export function contentTag(contextDir: string): string {
    return contextDigest(contextDir).slice(0, 12);
}

/** Copies $IMAGE from the laptop's Docker into every node of kind cluster $CLUSTER_NAME. */
export const KIND_LOAD_SCRIPT = `kind load docker-image "$IMAGE" --name "$CLUSTER_NAME"`;

/** Arguments of {@link RegistryImage}. */
export interface RegistryImageArgs {
    /** Directory with the registry server's Dockerfile (the build context). */
    readonly context: string;
    /** Image repository on the laptop and in the nodes, tagged with {@link contentTag}. */
    readonly repository: string;
    /** kind cluster whose nodes receive the image. */
    readonly clusterName: pulumi.Input<string>;
    /** Changes when the cluster is replaced, so the image is loaded into the new nodes. */
    readonly clusterId: pulumi.Input<string>;
}

/**
 * Builds the registry server image with the laptop's Docker and loads it into the kind
 * nodes: the registry cannot pull its own image from itself.
 */
export class RegistryImage extends pulumi.ComponentResource {
    /** `<repository>:<content tag>`, resolved only after the image is in the nodes. */
    public readonly imageRef: pulumi.Output<string>;
    /** Local image id (`sha256:...`). */
    public readonly imageId: pulumi.Output<string>;

    constructor(name: string, args: RegistryImageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("kind-local-registry:index:RegistryImage", name, args, opts);

        const imageName = `${args.repository}:${contentTag(args.context)}`;
        const image = new docker.Image(name, {
            imageName,
            build: {
                context: args.context,
                dockerfile: path.join(args.context, "Dockerfile"),
            },
            // Local only: `kind load` moves it into the nodes.
            skipPush: true,
            buildOnPreview: false,
        }, { parent: this });

        const load = new command.local.Command(`${name}-load`, {
            create: KIND_LOAD_SCRIPT,
            environment: { IMAGE: image.imageName, CLUSTER_NAME: args.clusterName },
            triggers: [image.repoDigest, args.clusterId],
        }, { parent: this });

        this.imageId = image.repoDigest;
        this.imageRef = pulumi.all([image.imageName, load.id]).apply(([ref]) => ref);
        this.registerOutputs({ imageRef: this.imageRef, imageId: this.imageId });
    }
}
