// The route table of the distribution API. Repository names contain slashes, so each route is
// anchored on its suffix (blobs/, manifests/, tags/list, referrers/) with a greedy name before it.
import { RegistryError } from "../errors";
import { runGarbageCollection } from "./admin";
import { apiVersionCheck } from "./base";
import { deleteBlob, getBlob } from "./blobs";
import type { Handler, RouteParams } from "./context";
import { listCatalog, listTags } from "./listings";
import { deleteManifest, getManifest, putManifest } from "./manifests";
import { getMetrics } from "./metrics";
import { listReferrers } from "./referrers";
import { getStorageSummary } from "./summary";
import { cancelUpload, completeUpload, patchUpload, startUpload, uploadStatus } from "./uploads";

interface Route {
  /** Route name for logs and metrics. */
  name: string;
  pattern: RegExp;
  params: (keyof RouteParams)[];
  methods: Partial<Record<string, Handler>>;
}

const NAME = "(.+)";
const SEGMENT = "([^/]+)";

export const routes: Route[] = [
  { name: "base", pattern: /^\/v2\/?$/, params: [], methods: { GET: apiVersionCheck, HEAD: apiVersionCheck } },
  { name: "catalog", pattern: /^\/v2\/_catalog$/, params: [], methods: { GET: listCatalog } },
  { name: "tags", pattern: new RegExp(`^/v2/${NAME}/tags/list$`), params: ["name"], methods: { GET: listTags } },
  {
    name: "manifest",
    pattern: new RegExp(`^/v2/${NAME}/manifests/${SEGMENT}$`),
    params: ["name", "reference"],
    methods: { GET: getManifest, HEAD: getManifest, PUT: putManifest, DELETE: deleteManifest },
  },
  { name: "uploads", pattern: new RegExp(`^/v2/${NAME}/blobs/uploads/?$`), params: ["name"], methods: { POST: startUpload } },
  {
    name: "upload",
    pattern: new RegExp(`^/v2/${NAME}/blobs/uploads/${SEGMENT}$`),
    params: ["name", "uuid"],
    methods: { GET: uploadStatus, PATCH: patchUpload, PUT: completeUpload, DELETE: cancelUpload },
  },
  { name: "blob", pattern: new RegExp(`^/v2/${NAME}/blobs/${SEGMENT}$`), params: ["name", "digest"], methods: { GET: getBlob, HEAD: getBlob, DELETE: deleteBlob } },
  { name: "referrers", pattern: new RegExp(`^/v2/${NAME}/referrers/${SEGMENT}$`), params: ["name", "digest"], methods: { GET: listReferrers } },
  { name: "admin-gc", pattern: /^\/_registry\/gc$/, params: [], methods: { POST: runGarbageCollection } },
  { name: "admin-summary", pattern: /^\/_registry\/summary$/, params: [], methods: { GET: getStorageSummary } },
  { name: "metrics", pattern: /^\/metrics$/, params: [], methods: { GET: getMetrics } },
];

export interface Match {
  route: string;
  handler: Handler;
  params: RouteParams;
}

/** Finds the handler of a path and method; throws NOT_FOUND or UNSUPPORTED (405 with Allow). */
export function match(method: string, path: string, table: Route[] = routes): Match {
  for (const route of table) {
    const m = route.pattern.exec(path);
    if (!m) continue;
    const handler = route.methods[method];
    if (!handler) {
      throw new RegistryError("UNSUPPORTED", `method ${method} not allowed here`, undefined, {
        headers: { Allow: Object.keys(route.methods).join(", ") },
      });
    }
    const params: RouteParams = {};
    route.params.forEach((key, i) => {
      params[key] = m[i + 1];
    });
    return { route: route.name, handler, params };
  }
  throw new RegistryError("NOT_FOUND", "no such endpoint", { path: path.slice(0, 200) });
}
