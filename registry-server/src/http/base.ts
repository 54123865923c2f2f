// GET /v2/: the API version check, answered only while storage is usable (it is the probe
// Kubernetes and clients use).
import { RegistryError } from "../errors";
import { Handler, sendJson } from "./context";

export const apiVersionCheck: Handler = async (ctx) => {
  if (!(await ctx.registry.healthy())) throw new RegistryError("UNAVAILABLE", "storage is not usable");
  sendJson(ctx.res, 200, {});
};
