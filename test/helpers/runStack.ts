import { promiseOf, RecordingMocks } from "./pulumiMocks";

/** The stack's exports, resolved. */
export interface StackOutputs {
    clusterName: string;
    kubeconfig: string;
    kubeconfigIsSecret: boolean;
    pushEndpoint: string;
    externalUrl: string;
    inClusterEndpoint: string;
    catalogUrl: string;
    manifestUrlTemplate: string;
    registryImage: string;
}

/**
 * Runs index.ts once under fresh Pulumi mocks (preview=false) with `config` set, in an
 * isolated module registry so that each call is a new program run; returns once every
 * resource registration has finished.
 */
export async function runStack(config: Record<string, string> = {}): Promise<{ mocks: RecordingMocks; outputs: StackOutputs }> {
    const mocks = new RecordingMocks();
    let outputs: StackOutputs | undefined;
    await jest.isolateModulesAsync(async () => {
        const pulumi = await import("@pulumi/pulumi");
        await pulumi.runtime.setMocks(mocks, "kind-local-registry", "dev", false);
        pulumi.runtime.setAllConfig(config);
        const stack = await import("../../index");
        outputs = {
            clusterName: await promiseOf(stack.clusterName),
            kubeconfig: await promiseOf(stack.kubeconfig),
            kubeconfigIsSecret: await pulumi.isSecret(stack.kubeconfig),
            pushEndpoint: stack.pushEndpoint,
            externalUrl: stack.externalUrl,
            inClusterEndpoint: stack.inClusterEndpoint,
            catalogUrl: stack.catalogUrl,
            manifestUrlTemplate: stack.manifestUrlTemplate,
            registryImage: await promiseOf(stack.registryImage),
        };
        // Waits for every outstanding registration, not just those behind the exports.
        await pulumi.runtime.disconnect();
    });
    if (!outputs) {
        throw new Error("the stack program did not run");
    }
    return { mocks, outputs };
}
