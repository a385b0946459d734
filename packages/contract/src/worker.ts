import { z } from "zod";
import { DeviceId } from "./common.js";

/**
 * A worker's life: Starting → Ready ⇄ Busy → Stopping → Stopped.
 * `Failed` is terminal and only ever reported by the one watching the worker (its hive).
 * Ready and Busy both accept requests; Busy means at least one request is in flight.
 */
export const WorkerStatus = z.enum(["Starting", "Ready", "Busy", "Stopping", "Stopped", "Failed"]);
export type WorkerStatus = z.infer<typeof WorkerStatus>;

/** Statuses in which `GET /health` answers 200 and requests are accepted. */
export const SERVING_STATUSES: readonly WorkerStatus[] = ["Ready", "Busy"];

/**
 * What a worker can do; the queen routes by these. `text-generation` serves /v1/completions and
 * /v1/chat/completions (with `chat` for message histories formatted by the model's template,
 * `json_schema` for constrained output, `tools` for tool calls), `embeddings` serves /v1/embeddings, `image-generation`
 * serves /v1/images/generations, `workflow` runs a workflow engine's graphs.
 */
export const WorkerCapability = z.enum([
  "text-generation",
  "chat",
  "json_schema",
  "tools",
  "embeddings",
  "image-generation",
  "workflow",
]);
export type WorkerCapability = z.infer<typeof WorkerCapability>;

/** `GET /health` body. */
export const HealthResponse = z.looseObject({ status: WorkerStatus });
export type HealthResponse = z.infer<typeof HealthResponse>;

/** `GET /info`: what this worker is and serves. */
export const WorkerInfo = z.looseObject({
  id: z.string().min(1),
  model_id: z.string().min(1),
  /** The device the model runs on; a worker group lists all of them in `devices`. */
  device: DeviceId,
  devices: z.array(DeviceId).optional(),
  port: z.number().int().min(1).max(65535),
  status: WorkerStatus,
  /** The program behind the worker, e.g. "rbee-llm" or "llama-server". */
  implementation: z.string(),
  version: z.string(),
  /** The worker type the hive spawns it as, e.g. "llm". */
  worker_type: z.string(),
  capabilities: z.array(WorkerCapability),
  protocol_version: z.number().int().positive(),
  /** How many requests run at the same time; more wait in a queue of `max_queue`. */
  slots: z.number().int().positive(),
  max_queue: z.number().int().nonnegative(),
  /** Tokens of context each request can use (prompt + generated). */
  context_size: z.number().int().positive().optional(),
  pid: z.number().int().positive().optional(),
});
export type WorkerInfo = z.infer<typeof WorkerInfo>;
