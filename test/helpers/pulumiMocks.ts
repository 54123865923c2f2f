import type * as pulumi from "@pulumi/pulumi";

/** One `registerResource` the program made, as the mocks saw it. */
export interface RecordedResource {
    readonly type: string;
    readonly name: string;
    /** Resolved inputs, untyped JSON as Pulumi's MockResourceArgs delivers them. */
    readonly inputs: Record<string, any>;
    /** Provider reference (`<urn>::<id>`) for custom resources with an explicit provider. */
    readonly provider?: string;
}

export const FAKE_KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n# fake kubeconfig from the mocks\n";
export const FAKE_IMAGE_ID = `sha256:${"ab".repeat(32)}`;

/**
 * Records every resource and fills in the outputs the engine would compute, so that no
 * Output stays unknown (with preview=false) and no test waits forever.
 */
export class RecordingMocks implements pulumi.runtime.Mocks {
    public readonly resources: RecordedResource[] = [];

    newResource(args: pulumi.runtime.MockResourceArgs): { id: string; state: Record<string, unknown> } {
        this.resources.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider });
        return { id: `${args.name}-id`, state: { ...args.inputs, ...computedOutputs(args) } };
    }

    call(args: pulumi.runtime.MockCallArgs): Record<string, unknown> {
        throw new Error(`the program made an unexpected invoke: ${args.token}`);
    }

    /** The single recorded resource of this type and logical name; fails otherwise. */
    one(type: string, name: string): RecordedResource {
        const found = this.resources.filter((r) => r.type === type && r.name === name);
        if (found.length !== 1) {
            throw new Error(`expected one ${type} named ${name}, found ${found.length}: ` +
                this.resources.map((r) => `${r.type}/${r.name}`).join(", "));
        }
        return found[0];
    }

    ofType(type: string): RecordedResource[] {
        return this.resources.filter((r) => r.type === type);
    }
}

function computedOutputs(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
    switch (args.type) {
        case "command:local:Command":
            // The cluster step prints the kubeconfig; the others print nothing of use.
            return { stdout: /-(create|kubeconfig)$/.test(args.name) ? FAKE_KUBECONFIG : "", stderr: "" };
        case "docker:index/image:Image":
            return { repoDigest: FAKE_IMAGE_ID, context: args.inputs.build?.context ?? "" };
        default:
            return {};
    }
}

/** Resolves to the value of an Output; reject-free because the mocks leave nothing unknown. */
export function promiseOf<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply(resolve));
}
