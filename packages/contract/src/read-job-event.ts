import type { JobCreated, JobEvent, JobEventType } from "./jobs.js";
import { isAmount, isCount, isOptional, isRecord, isString } from "./read-checks.js";

export const TERMINAL_JOB_EVENTS: readonly JobEventType[] = ["done", "error", "cancelled"];

export function isTerminalJobEvent(e: { type: string }): boolean {
  return (TERMINAL_JOB_EVENTS as readonly string[]).includes(e.type);
}

const LEVELS: readonly unknown[] = ["info", "warn", "error"];

/** What each event type requires beyond `seq` and `at`, as the `JobEvent` schema has it. */
const EVENT_FIELDS: Record<JobEventType, (e: Record<string, unknown>) => boolean> = {
  narration: (e) => isString(e.source) && isString(e.message) && isOptional(e.level, (v) => LEVELS.includes(v)),
  progress: (e) =>
    isAmount(e.done) &&
    (e.total === null || isAmount(e.total)) &&
    isString(e.unit) &&
    isOptional(e.label, isString) &&
    isOptional(e.rate, isAmount),
  token: (e) => isString(e.text) && isCount(e.index),
  data: (e) => "data" in e,
  done: () => true,
  error: (e) => isString(e.code) && isString(e.message),
  cancelled: (e) => isOptional(e.reason, isString),
};

/**
 * Reads one job event as the `JobEvent` schema does, without zod, for a client that follows a job's
 * stream and should not load the schemas to do it (`rbee infer`): the event, or undefined when
 * `value` is not one (an unknown type included). Extra fields pass, as with the schema.
 */
export function readJobEvent(value: unknown): JobEvent | undefined {
  if (!isRecord(value)) return undefined;
  const e = value;
  if (!isCount(e.seq) || !isCount(e.at) || typeof e.type !== "string" || !Object.hasOwn(EVENT_FIELDS, e.type)) {
    return undefined;
  }
  return EVENT_FIELDS[e.type as JobEventType](e) ? (value as JobEvent) : undefined;
}

/** Reads a `POST /v1/jobs` reply as the `JobCreated` schema does, without zod. */
export function readJobCreated(value: unknown): JobCreated | undefined {
  return isRecord(value) && isString(value.job_id) && isString(value.sse_url) ? (value as JobCreated) : undefined;
}
