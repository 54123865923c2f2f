import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { mirrorEndpoint, registryEndpoints } from "./components/endpoints";
import { KindCluster } from "./components/kindCluster";
import { Registry } from "./components/registry";
import { RegistryImage } from "./components/registryImage";
import { readSettings } from "./components/settings";

const settings = readSettings(new pulumi.Config("cluster"), new pulumi.Config("registry"));
const endpoints = registryEndpoints(settings.registry.hostPort, settings.registry.nodePort);

const cluster = new KindCluster("cluster", {
    ...settings.cluster,
    hostPort: settings.registry.hostPort,
    nodePort: settings.registry.nodePort,
    registryHost: endpoints.pushEndpoint,
    mirror: mirrorEndpoint(settings.registry.clusterIP),
});

const image = new RegistryImage("registry-image", {
    context: path.join(__dirname, "registry-server"),
    repository: "registry-server",
    clusterName: cluster.clusterName,
    clusterId: cluster.clusterId,
});

new Registry("registry", {
    image: image.imageRef,
    registryHost: endpoints.pushEndpoint,
    clusterIP: settings.registry.clusterIP,
    nodePort: settings.registry.nodePort,
    storageSize: settings.registry.storageSize,
    resources: settings.registry.resources,
    extraEnv: settings.registry.extraEnv,
}, { providers: { kubernetes: cluster.provider } });

export const clusterName = cluster.clusterName;
export const kubeconfig = cluster.kubeconfig;
export const pushEndpoint = endpoints.pushEndpoint;
export const externalUrl = endpoints.externalUrl;
export const inClusterEndpoint = endpoints.inClusterEndpoint;
export const catalogUrl = endpoints.catalogUrl;
export const manifestUrlTemplate = endpoints.manifestUrlTemplate;
export const registryImage = image.imageRef;
