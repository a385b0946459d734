import { z } from "zod";
import { DeviceId, SafeId } from "./common.js";

/**
 * The hive's HTTP API, called by the queen (and by the CLI through the queen). Every route but
 * `GET /health` wants the cluster token.
 *
 * - `GET  /v1/info`               → HiveHeartbeat (the same picture the hive sends the queen)
 * - `GET  /v1/workers`            → { workers: HiveWorkerReport[] }
 * - `POST /v1/workers`            SpawnWorkerRequest → HiveWorkerReport once the worker is Ready
 *                                 (the request waits; a client that goes away stops the spawn)
 * - `DELETE /v1/workers/{id}`     → HiveWorkerReport after the worker stopped
 * - `GET  /v1/workers/{id}/logs`  ?tail=N → text/plain, the worker's last log lines
 * - `POST /v1/models`             ResolveModelRequest → HiveModel (finds a model and adds it to the catalog)
 * - `GET  /v1/models`             → { models: HiveModel[] }
 * - `POST /v1/worker-heartbeat`   WorkerHeartbeat → HeartbeatReply (from the hive's workers)
 */

export const WorkerType = z.enum(["llm"]);
export type WorkerType = z.infer<typeof WorkerType>;

export const SpawnWorkerRequest = z.strictObject({
  worker_type: WorkerType.default("llm"),
  /** A model id of the hive's catalog (see POST /v1/models). */
  model: z.string().min(1),
  device: DeviceId.default("cpu"),
  worker_id: SafeId.optional(),
  ctx_size: z.number().int().min(16).optional(),
  parallel: z.number().int().min(1).max(256).optional(),
  threads: z.number().int().min(1).optional(),
  max_queue: z.number().int().min(0).optional(),
  /** How long the spawn may take before it fails (and the worker is stopped). Default 120 s. */
  ready_timeout_ms: z.number().int().positive().optional(),
  /**
   * The queen's keep-alive for this worker (ms; null is forever). The hive only keeps it and reports
   * it back, so that a restarted queen knows it again.
   */
  keep_alive_ms: z.number().nonnegative().nullable().optional(),
});
export type SpawnWorkerRequest = z.input<typeof SpawnWorkerRequest>;

export const ResolveModelRequest = z.strictObject({
  /** A model reference: a catalog id, or an absolute path of a GGUF file on the hive's machine. */
  ref: z.string().min(1),
});
export type ResolveModelRequest = z.infer<typeof ResolveModelRequest>;
