// What /proc says about a server process: CPU time (utime+stime) and memory (VmRSS, VmHWM).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
}

/** A `Vm*` line of /proc/<pid>/status in MiB, or undefined when the process is gone. */
export function statusMiB(pid: number, field: "VmRSS" | "VmHWM"): number | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return m ? Number(m[1]) / 1024 : undefined;
}

/** Samples VmRSS of some processes every `intervalMs`; keeps the peak overall and per round. */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  private readonly peak = new Map<string, number>();
  private readonly roundPeak = new Map<string, number>();
  private readonly rounds = new Map<string, number[]>();
  private readonly peakLabel = new Map<string, string>();
  /** What is running now (e.g. "round 2 small"), remembered with each server's peak. */
  label = "start";

  constructor(private readonly pids: Map<string, number>) {}

  start(intervalMs = 50): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  /** Takes a last sample and stops; stopping again samples nothing (what runs after must not count). */
  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  private sample(): void {
    for (const [name, pid] of this.pids) {
      const rss = statusMiB(pid, "VmRSS");
      if (rss === undefined) continue;
      if (rss > (this.peak.get(name) ?? 0)) {
        this.peak.set(name, rss);
        this.peakLabel.set(name, this.label);
      }
      this.roundPeak.set(name, Math.max(this.roundPeak.get(name) ?? 0, rss));
    }
  }

  /** Closes a round: its peak is kept and the next round starts from the current RSS. */
  endRound(): void {
    this.sample();
    for (const name of this.pids.keys()) {
      const list = this.rounds.get(name) ?? [];
      list.push(this.roundPeak.get(name) ?? NaN);
      this.rounds.set(name, list);
      this.roundPeak.delete(name);
    }
  }

  peakOf(name: string): number | undefined {
    return this.peak.get(name);
  }

  peakLabelOf(name: string): string | undefined {
    return this.peakLabel.get(name);
  }

  roundPeaksOf(name: string): number[] {
    return this.rounds.get(name) ?? [];
  }
}

/** CPU seconds the whole machine has been busy (all cores; idle and iowait excluded). */
export function machineBusySeconds(): number {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu[7];
  return busy / ticksPerSecond();
}

/**
 * CPU used by processes other than the servers and the bench itself, over a stretch of time: on a
 * shared machine this says how disturbed a round was.
 */
export class BackgroundLoad {
  private busy0 = 0;
  private own0 = 0;
  private t0 = 0;

  constructor(private readonly pids: number[]) {}

  private own(): number {
    const self = process.cpuUsage();
    let total = (self.user + self.system) / 1e6;
    for (const pid of this.pids) {
      try {
        total += cpuSeconds(pid);
      } catch {
        // exited
      }
    }
    return total;
  }

  mark(): void {
    this.busy0 = machineBusySeconds();
    this.own0 = this.own();
    this.t0 = Date.now();
  }

  /** Average cores used by others since the mark. */
  coresSinceMark(): number {
    const seconds = (Date.now() - this.t0) / 1000;
    const others = machineBusySeconds() - this.busy0 - (this.own() - this.own0);
    return seconds > 0 ? Math.max(0, others / seconds) : 0;
  }
}
