// Prometheus metrics of one server, on a prom-client Registry of its own (no module-level
// registry: several servers in one process, as in tests, never share or clash). Requests come
// from the HTTP layer's RequestObserver, garbage collection from Maintenance.onGc, and the
// storage gauges are read from StorageUsage when scraped.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry as MetricsRegistry } from "prom-client";
import type { RequestObserver } from "./http/app";
import type { GcListener } from "./maintenance";
import type { Registry } from "./registry/registry";
import { countObjects, StorageUsage } from "./registry/usage";
import { requestMemory } from "./util/memory-budget";

/** Any other method is counted as "other", so a client cannot add series at will. */
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const UPLOAD_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const GC_KINDS = ["blobs", "manifests", "tags", "layer_links", "uploads", "repositories"] as const;

/** The requests that complete a blob upload: PUT of a session, or a monolithic/mount POST. */
function completesUpload(route: string, method: string, status: number): boolean {
  return status === 201 && ((route === "upload" && method === "PUT") || (route === "uploads" && method === "POST"));
}

export class RegistryMetrics {
  readonly registry = new MetricsRegistry();
  private readonly requests: Counter<"route" | "method" | "status">;
  private readonly requestDuration: Histogram<"route" | "method">;
  private readonly bytesIn: Counter<"route">;
  private readonly bytesOut: Counter<"route">;
  private readonly uploadDuration: Histogram;
  private readonly gcRuns: Counter<"dry_run">;
  private readonly gcFreed: Counter;
  private readonly gcDeleted: Counter<"kind">;

  constructor(store: Registry, usage: StorageUsage) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: "registry_http_requests_total", help: "HTTP requests by route, method and status.", labelNames: ["route", "method", "status"], registers });
    this.requestDuration = new Histogram({
      name: "registry_http_request_duration_seconds",
      help: "Time from request to the end of the response, by route and method.",
      labelNames: ["route", "method"],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.bytesIn = new Counter({ name: "registry_http_received_bytes_total", help: "Bytes received (headers and bodies), by route.", labelNames: ["route"], registers });
    this.bytesOut = new Counter({ name: "registry_http_sent_bytes_total", help: "Bytes sent (headers and bodies), by route.", labelNames: ["route"], registers });
    this.uploadDuration = new Histogram({
      name: "registry_blob_upload_duration_seconds",
      help: "Duration of the requests that complete a blob upload (PUT of a session, monolithic POST, mount).",
      buckets: UPLOAD_BUCKETS,
      registers,
    });
    new Gauge({
      name: "registry_storage_bytes",
      help: "Bytes of all blobs and manifests in the store (each stored once).",
      registers,
      async collect() {
        await usage.refresh();
        this.set(usage.totals().bytes);
      },
    });
    new Gauge({
      name: "registry_storage_objects",
      help: "Objects in the store, by kind: blobs, repositories, manifests, tags.",
      labelNames: ["kind"],
      registers,
      async collect() {
        const counts = await countObjects(store, usage);
        for (const [kind, n] of Object.entries(counts)) this.set({ kind }, n);
      },
    });
    new Gauge({
      name: "registry_request_memory_bytes",
      help: "Bytes requests hold of the process's request memory budget (uploads' first chunks, buffered batches, download buffers, manifest bodies).",
      registers,
      collect() {
        this.set(requestMemory.inUse);
      },
    });
    new Gauge({
      name: "registry_request_memory_waiting",
      help: "Requests waiting for room in the request memory budget before they read their bodies.",
      registers,
      collect() {
        this.set(requestMemory.waiting);
      },
    });
    new Gauge({
      name: "registry_volume_free_bytes",
      help: "Bytes free for new data on the storage volume.",
      registers,
      async collect() {
        const free = await usage.freeBytes();
        if (free !== undefined) this.set(free);
      },
    });
    const { quotaBytes } = usage.limits;
    if (quotaBytes !== undefined) {
      new Gauge({ name: "registry_storage_quota_bytes", help: "The storage quota (REGISTRY_STORAGE_QUOTA).", registers }).set(quotaBytes);
    }
    this.gcRuns = new Counter({ name: "registry_gc_runs_total", help: "Garbage collection runs, by whether they were dry runs.", labelNames: ["dry_run"], registers });
    this.gcFreed = new Counter({ name: "registry_gc_freed_bytes_total", help: "Bytes of blobs deleted by garbage collection.", registers });
    this.gcDeleted = new Counter({
      name: "registry_gc_deleted_objects_total",
      help: `Objects deleted by garbage collection, by kind: ${GC_KINDS.join(", ")}.`,
      labelNames: ["kind"],
      registers,
    });
    // Series exist from the start, so rate() and increase() see the first run.
    for (const dryRun of ["true", "false"]) this.gcRuns.inc({ dry_run: dryRun }, 0);
    for (const kind of GC_KINDS) this.gcDeleted.inc({ kind }, 0);
  }

  readonly observeRequest: RequestObserver = ({ route, method, status, bytesIn, bytesOut, durationMs }) => {
    const m = METHODS.has(method) ? method : "other";
    this.requests.inc({ route, method: m, status: String(status) });
    this.requestDuration.observe({ route, method: m }, durationMs / 1000);
    this.bytesIn.inc({ route }, bytesIn);
    this.bytesOut.inc({ route }, bytesOut);
    if (completesUpload(route, method, status)) this.uploadDuration.observe(durationMs / 1000);
  };

  readonly observeGc: GcListener = (report) => {
    this.gcRuns.inc({ dry_run: String(report.dryRun) });
    if (report.dryRun) return;
    this.gcFreed.inc(report.bytesFreed);
    const deleted: Record<(typeof GC_KINDS)[number], number> = {
      blobs: report.blobsDeleted,
      manifests: report.manifestsDeleted.length,
      tags: report.tagsDeleted.length,
      layer_links: report.layerLinksDeleted,
      uploads: report.uploadsPurged,
      repositories: report.repositoriesDeleted.length,
    };
    for (const kind of GC_KINDS) this.gcDeleted.inc({ kind }, deleted[kind]);
  };
}
