import { type Logger, pino } from "pino";

export type { Logger } from "pino";

export interface LoggerOptions {
  /** The process speaking: "queen", "hive", "worker". */
  service: string;
  /** Extra facts on every line, e.g. `{worker_id}`. */
  bindings?: Record<string, unknown>;
  /** Default: RBEE_LOG_LEVEL, else "info". */
  level?: string;
  /** File descriptor or path to write to. Default: stdout. */
  destination?: number | string;
}

/**
 * Structured logs: one JSON line per event, with `time`, `level`, `service`, `pid` and the event's facts.
 * Writes synchronously so that the last lines before a crash or exit are never lost.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? process.env.RBEE_LOG_LEVEL ?? "info",
      base: { service: options.service, pid: process.pid, ...options.bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: options.destination ?? 1, sync: true, mkdir: true }),
  );
}

/** A logger that drops everything; for libraries used without a daemon around them. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
