// Request policies shared by several resources.
import { RegistryError } from "../errors";
import type { RequestContext } from "./context";

/** REGISTRY_STORAGE_DELETE_ENABLED=false turns every DELETE into 405 UNSUPPORTED, as in registry:2. */
export function requireDeleteEnabled(ctx: RequestContext): void {
  if (!ctx.config.storage.deleteEnabled) {
    throw new RegistryError("UNSUPPORTED", "deletes are disabled (REGISTRY_STORAGE_DELETE_ENABLED=false)");
  }
}
