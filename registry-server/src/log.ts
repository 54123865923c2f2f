// A small structured logger: one JSON object per line, or a human line when stdout is a terminal.
import type { LogFormat, LogLevel } from "./config";

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
}

export function createLogger(level: LogLevel, format: LogFormat, write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const min = LEVELS[level];
  const emit = (lvl: LogLevel, msg: string, fields: LogFields = {}): void => {
    if (LEVELS[lvl] < min) return;
    const time = new Date().toISOString();
    if (format === "json") {
      write(JSON.stringify({ time, level: lvl, msg, ...fields }) + "\n");
    } else {
      const rest = Object.entries(fields)
        .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
        .join(" ");
      write(`${time} ${lvl.toUpperCase().padEnd(5)} ${msg}${rest ? " " + rest : ""}\n`);
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    enabled: (l) => LEVELS[l] >= min,
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = createLogger("error", "json", () => undefined);
