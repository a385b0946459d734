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
 * The message of the one line a daemon logs for each HTTP request it answered (server.ts). These
 * lines are written in batches: see createLogger.
 */
export const REQUEST_LOG_MSG = "request";

/** Request lines wait at most this long for the next write. */
const BATCH_MS = 50;
/** ... or until this many bytes wait. */
const BATCH_BYTES = 8192;

/** The flushes of loggers holding request lines, run when the process exits. */
const pendingAtExit = new Set<() => void>();
let exitHookInstalled = false;

/**
 * Structured logs: one JSON line per event, with `time`, `level`, `service`, `pid` and the event's facts.
 *
 * Every line is written synchronously as it is logged, so that the last lines before a crash or an
 * exit are never lost, except the per-request lines (REQUEST_LOG_MSG): those wait up to BATCH_MS
 * (or BATCH_BYTES) and go out in one write with the lines after them. Under load a write a request
 * cost the queen a tenth of its CPU per routed request (a system call, and a wake-up of whatever reads
 * its stdout). Any other line, and the process's exit, writes what waits first, in order; only a
 * SIGKILL (or a power cut) can lose request lines, those of its last 50 ms.
 */
export function createLogger(options: LoggerOptions): Logger {
  const dest = pino.destination({ dest: options.destination ?? 1, sync: true, minLength: BATCH_BYTES, mkdir: true });
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    pendingAtExit.delete(flush);
    // flush() writes at once, as the destination is synchronous (flushSync would also fsync a file)
    dest.flush();
  };
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const f of [...pendingAtExit]) f();
    });
  }
  return pino(
    {
      level: options.level ?? process.env.RBEE_LOG_LEVEL ?? "info",
      base: { service: options.service, pid: process.pid, ...options.bindings },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method, level) {
          method.apply(this, args);
          if (args[1] === REQUEST_LOG_MSG && level < 40) {
            if (timer === undefined) {
              timer = setTimeout(flush, BATCH_MS).unref();
              pendingAtExit.add(flush);
            }
          } else {
            flush();
          }
        },
      },
    },
    dest,
  );
}

/** A logger that drops everything; for libraries used without a daemon around them. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
