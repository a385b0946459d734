import { z } from "zod";
import { Bytes, DeviceId, Timestamp } from "./common.js";
import { WorkerCapability, WorkerStatus } from "./worker.js";

/**
 * `POST <heartbeat-url>/v1/worker-heartbeat`, every 5 s by default and at once on a status change.
 *
 * The standard fields come from every worker. Engines add the optional groups that apply to them:
 * several models (`loaded_models`, `vram_allocations`), batching (`batch_size`, `queue_depth`,
 * `throughput_tokens_per_second`), workflows (`current_workflow`, `workflow_progress`) and worker
 * groups (`group_id` ... `shard_workers`). Unknown fields pass, so a newer worker can report more.
 */
export const WorkerHeartbeat = z.looseObject({
  protocol_version: z.number().int().positive(),
  worker_id: z.string().min(1),
  status: WorkerStatus,
  model: z.string(),
  device: DeviceId,
  /** Bytes of the device's memory this worker holds (RAM for a CPU worker). */
  vram_used: Bytes,
  /** Bytes of memory the device has in all. */
  vram_total: Bytes,
  requests_total: z.number().int().nonnegative(),
  tokens_generated: z.number().int().nonnegative(),
  uptime_seconds: z.number().nonnegative(),
  last_request_at: Timestamp.nullable(),

  /** Where the worker serves the contract, as it sees itself. */
  url: z.string().optional(),
  port: z.number().int().min(1).max(65535).optional(),
  pid: z.number().int().positive().optional(),
  worker_type: z.string().optional(),
  implementation: z.string().optional(),
  /** What the worker serves (its engine's capabilities). */
  capabilities: z.array(WorkerCapability).optional(),
  /** Resident memory of the worker process, in bytes. */
  memory_used: Bytes.optional(),
  slots: z.number().int().positive().optional(),
  in_flight: z.number().int().nonnegative().optional(),
  requests_failed: z.number().int().nonnegative().optional(),

  // batching engines
  batch_size: z.number().int().nonnegative().optional(),
  queue_depth: z.number().int().nonnegative().optional(),
  throughput_tokens_per_second: z.number().nonnegative().optional(),
  /** Share of the engine's KV cache in use, 0..1 (vLLM's, TensorRT-LLM's). */
  kv_cache_usage: z.number().min(0).max(1).optional(),

  // engines holding several models
  loaded_models: z.array(z.string()).optional(),
  vram_allocations: z.record(z.string(), Bytes).optional(),

  // workflow engines
  current_workflow: z.string().nullable().optional(),
  workflow_progress: z
    .looseObject({
      prompt_id: z.string(),
      current_node: z.string().nullable(),
      progress: z.number().min(0).max(1),
    })
    .nullable()
    .optional(),

  // worker groups
  group_id: z.string().optional(),
  role: z.enum(["coordinator", "shard"]).optional(),
  coordinator: z.string().optional(),
  /** The group's devices, each as `<hive>:<device>` (e.g. `gpu-box:cuda:0`), in split order. */
  devices: z.array(z.string()).optional(),
  /** Bytes planned on each device of `devices`. */
  vram_per_device: z.record(z.string(), Bytes).optional(),
  group_health: z.enum(["healthy", "degraded", "failed"]).optional(),
  shard_workers: z.array(z.looseObject({ worker_id: z.string(), status: WorkerStatus })).optional(),
  /** A shard's RPC server, `host:port`. */
  rpc_endpoint: z.string().optional(),
});
export type WorkerHeartbeat = z.infer<typeof WorkerHeartbeat>;

/** A command carried back in a heartbeat reply. */
export const HeartbeatCommand = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("unload_model"), model: z.string() }),
  z.looseObject({ type: z.literal("shutdown"), reason: z.string().optional() }),
]);
export type HeartbeatCommand = z.infer<typeof HeartbeatCommand>;

/**
 * A command the queen sends a hive in the reply to its heartbeat (`POST /v1/hive-heartbeat`).
 * `set_keep_alive`: the keep-alive the queen now holds for a worker (a request changed it), so that
 * the hive reports it back and a restarted queen (or hive) still knows it; null is forever.
 */
export const HiveCommand = z.discriminatedUnion("type", [
  z.looseObject({
    type: z.literal("set_keep_alive"),
    worker_id: z.string(),
    keep_alive_ms: z.number().nonnegative().nullable(),
  }),
]);
export type HiveCommand = z.infer<typeof HiveCommand>;

/**
 * The reply to a heartbeat. `commands` is parsed leniently by receivers: a command they do not
 * know is logged and skipped, so an older worker survives a newer hive.
 */
export const HeartbeatReply = z.looseObject({
  ack: z.boolean(),
  commands: z.array(z.unknown()).default([]),
});
export type HeartbeatReply = z.infer<typeof HeartbeatReply>;
