// GET /metrics: the Prometheus text exposition of this server (REGISTRY_METRICS_ENABLED).
import { RegistryError } from "../errors";
import type { Handler } from "./context";

export const getMetrics: Handler = async (ctx) => {
  if (!ctx.metrics) throw new RegistryError("NOT_FOUND", "metrics are disabled (REGISTRY_METRICS_ENABLED=false)");
  const body = Buffer.from(await ctx.metrics.registry.metrics());
  ctx.res.writeHead(200, { "Content-Type": ctx.metrics.registry.contentType, "Content-Length": String(body.length) });
  ctx.res.end(body);
};
