// Administration endpoints under /_registry/ (outside the distribution API's /v2/ namespace).
// Like the rest of this development registry they carry no authentication: it listens on
// loopback, or behind a NodePort published on 127.0.0.1 only.
import { RegistryError } from "../errors";
import { parseBool } from "../config";
import { Handler, sendJson } from "./context";

/** POST /_registry/gc[?dryRun=true]: runs garbage collection now and answers its report. */
export const runGarbageCollection: Handler = async (ctx) => {
  let dryRun: boolean;
  try {
    dryRun = parseBool(ctx.query.get("dryRun") ?? undefined, "dryRun", false);
  } catch (err) {
    throw new RegistryError("PARAMETER_INVALID", err instanceof Error ? err.message : String(err));
  }
  sendJson(ctx.res, 200, await ctx.maintenance.runGc(dryRun));
};
