import type { WorkerExit } from "@rbee/contract";

/** How a child process ended, as the `exit` event tells it (or the spawn error when it never ran). */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be started at all. */
  error?: string;
}

/** "exited with code 1", "killed by SIGKILL", "could not be started: ...". */
export function describeExit(exit: ExitInfo): string {
  if (exit.error !== undefined) return `could not be started: ${exit.error}`;
  if (exit.signal !== null) return `killed by ${exit.signal}`;
  if (exit.code !== null) return `exited with code ${exit.code}`;
  return "exited";
}

/** The contract's WorkerExit for an exit; `context` (e.g. "stopped by request") leads the reason. */
export function toWorkerExit(exit: ExitInfo, context?: string, at = new Date()): WorkerExit {
  const how = describeExit(exit);
  return {
    code: exit.code,
    signal: exit.signal,
    at: at.toISOString(),
    reason: context === undefined ? how : `${context} (${how})`,
  };
}
