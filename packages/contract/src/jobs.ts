import { z } from "zod";

/**
 * Events of a job's stream (`GET /v1/jobs/{id}/stream`). The SSE event name is `type`, the SSE id is
 * `seq` (so a client can reconnect with `Last-Event-ID`), and the data is the whole object.
 * Every stream ends with exactly one of `done`, `error`, `cancelled`.
 */
const base = {
  /** Position of the event in its job, from 0. */
  seq: z.number().int().nonnegative(),
  /** Milliseconds since the Unix epoch. */
  at: z.number().int().nonnegative(),
};

export const NarrationEvent = z.looseObject({
  ...base,
  type: z.literal("narration"),
  /** Who speaks: "queen", "hive gpu-box", "worker llm-1". */
  source: z.string(),
  /** In words a person reads: "hive gpu-box: loading model 42%". */
  message: z.string(),
  level: z.enum(["info", "warn", "error"]).optional(),
});

export const ProgressEvent = z.looseObject({
  ...base,
  type: z.literal("progress"),
  done: z.number().nonnegative(),
  total: z.number().nonnegative().nullable(),
  unit: z.string(),
  label: z.string().optional(),
  /** Units per second, when the sender can tell. */
  rate: z.number().nonnegative().optional(),
});

export const JobTokenEvent = z.looseObject({
  ...base,
  type: z.literal("token"),
  text: z.string(),
  index: z.number().int().nonnegative(),
});

export const DataEvent = z.looseObject({
  ...base,
  type: z.literal("data"),
  data: z.unknown(),
});

export const JobDoneEvent = z.looseObject({
  ...base,
  type: z.literal("done"),
  result: z.unknown().optional(),
});

export const JobErrorEvent = z.looseObject({
  ...base,
  type: z.literal("error"),
  code: z.string(),
  message: z.string(),
});

export const JobCancelledEvent = z.looseObject({
  ...base,
  type: z.literal("cancelled"),
  reason: z.string().optional(),
});

export const JobEvent = z.discriminatedUnion("type", [
  NarrationEvent,
  ProgressEvent,
  JobTokenEvent,
  DataEvent,
  JobDoneEvent,
  JobErrorEvent,
  JobCancelledEvent,
]);
export type JobEvent = z.infer<typeof JobEvent>;
export type JobEventType = JobEvent["type"];

/** `POST /v1/jobs` reply. */
export const JobCreated = z.looseObject({
  job_id: z.string(),
  sse_url: z.string(),
});
export type JobCreated = z.infer<typeof JobCreated>;
