// Scheduled upkeep of the store: garbage collection (with retention) and upload purging, on
// the intervals configured, plus on-demand runs for the admin endpoint and the CLI.
import type { Config } from "./config";
import type { Logger } from "./log";
import type { GcReport } from "./registry/gc";
import type { Registry } from "./registry/registry";

export type GcListener = (report: GcReport) => void;

export class Maintenance {
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly listeners: GcListener[] = [];
  private readonly waiting = new Map<boolean, Promise<GcReport>>();

  constructor(
    private readonly registry: Registry,
    private readonly config: Config,
    private readonly log: Logger,
  ) {}

  onGc(listener: GcListener): void {
    this.listeners.push(listener);
  }

  /**
   * A collection with the configured grace period, retention and upload age. Collections run
   * one at a time; callers asking for the same kind (dry run or not) as one that is waiting to
   * start share it (it will see everything they did before asking). Listeners hear of each once.
   */
  runGc(dryRun: boolean): Promise<GcReport> {
    const waiting = this.waiting.get(dryRun);
    if (waiting) return waiting;
    const run = this.collect(dryRun, () => this.waiting.delete(dryRun));
    this.waiting.set(dryRun, run);
    return run;
  }

  private async collect(dryRun: boolean, onStart: () => void): Promise<GcReport> {
    const { gc, retention, uploadPurging } = this.config.maintenance;
    const report = await this.registry.gc.run(
      {
        dryRun,
        gracePeriodMs: gc.gracePeriodMs,
        deleteUntagged: gc.deleteUntagged,
        retention,
        uploadMaxAgeMs: uploadPurging.enabled ? uploadPurging.ageMs : undefined,
      },
      onStart,
    );
    this.log.info("garbage collection", {
      dryRun,
      durationMs: report.durationMs,
      tagsDeleted: report.tagsDeleted.length,
      manifestsDeleted: report.manifestsDeleted.length,
      blobsDeleted: report.blobsDeleted,
      bytesFreed: report.bytesFreed,
      uploadsPurged: report.uploadsPurged,
    });
    for (const l of this.listeners) l(report);
    return report;
  }

  /** Starts the configured schedules; timers never keep the process alive. */
  start(): void {
    const { gc, uploadPurging } = this.config.maintenance;
    const every = (ms: number, task: () => Promise<unknown>, what: string) => {
      const timer = setInterval(() => {
        task().catch((err: unknown) => this.log.error(`${what} failed`, { error: err instanceof Error ? err.message : String(err) }));
      }, ms);
      timer.unref();
      this.timers.push(timer);
    };
    if (gc.intervalMs > 0) every(gc.intervalMs, () => this.runGc(false), "garbage collection");
    if (uploadPurging.enabled && uploadPurging.intervalMs > 0) {
      every(
        uploadPurging.intervalMs,
        async () => {
          const purged = await this.registry.gc.purgeAllUploads(Date.now() - uploadPurging.ageMs);
          if (purged > 0) this.log.info("purged abandoned uploads", { count: purged });
        },
        "upload purging",
      );
    }
  }

  stop(): void {
    this.timers.splice(0).forEach((t) => clearInterval(t));
  }
}
