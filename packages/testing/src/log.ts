import { pino } from "pino";

/**
 * A logger for daemons started inside a test process: they would write to stdout past vitest's
 * capture, so only warnings and errors go out, on stderr.
 */
export function quietLog(service: string) {
  return pino({ level: "warn", base: { service } }, pino.destination(2));
}
