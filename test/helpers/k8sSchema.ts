import { RecordedResource } from "./pulumiMocks";

/**
 * Validates a recorded Kubernetes resource's inputs against the Kubernetes 1.27 OpenAPI
 * schema (kubernetes-models): throws on unknown shapes, wrong types, missing fields.
 */
export function validateKubernetesObject(resource: RecordedResource): void {
    const match = /^kubernetes:([a-z0-9.]+)\/(v[0-9a-z]+):([A-Za-z]+)$/.exec(resource.type);
    if (!match) {
        throw new Error(`not a Kubernetes resource type: ${resource.type}`);
    }
    const [, group, version, kind] = match;
    const apiVersion = group === "core" ? version : `${group}/${version}`;
    if (resource.inputs.apiVersion !== apiVersion || resource.inputs.kind !== kind) {
        throw new Error(`${resource.name}: apiVersion/kind ${resource.inputs.apiVersion}/${resource.inputs.kind} ` +
            `do not match its type ${resource.type}`);
    }
    const models = require(`kubernetes-models/${apiVersion}/${kind}`);
    new models[kind](resource.inputs).validate();
}

export function isKubernetesResource(resource: RecordedResource): boolean {
    return resource.type.startsWith("kubernetes:");
}
