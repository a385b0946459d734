import { z } from "zod";
import { ArtifactStatus, GgufSummary, ModelFormat } from "./catalog.js";
import { Bytes, DeviceId, Timestamp } from "./common.js";
import { Device } from "./device.js";
import { GroupShard } from "./group.js";
import { WorkerHeartbeat } from "./heartbeat.js";
import { HfConfigSummary } from "./hf-config.js";
import { WorkerCapability, WorkerStatus } from "./worker.js";
import { InstalledWorkerType } from "./worker-types.js";

/** How a worker process ended, as its hive saw it. */
export const WorkerExit = z.looseObject({
  code: z.number().int().nullable(),
  signal: z.string().nullable(),
  at: Timestamp,
  /** In words: "exited with code 1", "killed by SIGKILL", "stopped by request". */
  reason: z.string(),
});
export type WorkerExit = z.infer<typeof WorkerExit>;

/** One worker as its hive reports it: the hive's own view plus the worker's latest heartbeat. */
export const HiveWorkerReport = z.looseObject({
  worker_id: z.string(),
  worker_type: z.string(),
  model: z.string(),
  device: DeviceId,
  url: z.string(),
  port: z.number().int().min(1).max(65535),
  pid: z.number().int().positive().nullable(),
  /** The hive's view: Starting until /health answers, Failed when restarts ran out. */
  status: WorkerStatus,
  restarts: z.number().int().nonnegative(),
  last_exit: WorkerExit.nullable(),
  started_at: Timestamp,
  /** Milliseconds since the worker's last heartbeat reached the hive, null if none yet. */
  heartbeat_age_ms: z.number().nonnegative().nullable(),
  heartbeat: WorkerHeartbeat.nullable(),
  /** True when its heartbeats are more than 3 intervals old (lost, and killed, after 6). */
  stale: z.boolean().optional(),
  /** True for a worker the hive found running (after a hive restart) rather than spawned. */
  adopted: z.boolean().optional(),
  /** The keep-alive the queen asked for at spawn (ms; null is forever), kept for a restarted queen. */
  keep_alive_ms: z.number().nonnegative().nullable().optional(),
  /** The memory the queen reserved for it at spawn (bytes), kept for a restarted queen. */
  memory_bytes: z.number().int().nonnegative().optional(),
  /** Its configuration as the hive gave it (defaults filled in): an update's replacement gets the same. */
  config: z.record(z.string(), z.unknown()).optional(),
  /** What its type serves (from the worker type's descriptor); the queen routes by these. */
  capabilities: z.array(WorkerCapability).optional(),
  /**
   * A member of a worker group: its group, its role, a shard's RPC server (`host:port`), and a
   * coordinator's shards and split (so that a restarted queen knows the group again).
   */
  group: z
    .looseObject({
      group_id: z.string(),
      role: z.enum(["coordinator", "shard"]),
      rpc: z.string().optional(),
      shards: z.array(GroupShard).optional(),
      tensor_split: z.array(z.number().nonnegative()).optional(),
    })
    .optional(),
});
export type HiveWorkerReport = z.infer<typeof HiveWorkerReport>;

/** A model in a hive's catalog, with where its file is on that machine. */
export const HiveModel = z.looseObject({
  id: z.string(),
  name: z.string(),
  size_bytes: Bytes,
  status: ArtifactStatus,
  /** Absolute path of the (first) model file on the hive's machine. */
  path: z.string().optional(),
  source_url: z.string().optional(),
  error: z.string().optional(),
  gguf: GgufSummary.optional(),
  /** `hf-repo` for a Hugging Face repo directory (its path is then its config.json); absent: a GGUF. */
  format: ModelFormat.optional(),
  hf_config: HfConfigSummary.optional(),
  /** While Downloading: bytes on disk so far. */
  downloaded_bytes: Bytes.optional(),
});
export type HiveModel = z.infer<typeof HiveModel>;

/** `POST <queen>/v1/hive-heartbeat`, every 5 s by default. */
export const HiveHeartbeat = z.looseObject({
  protocol_version: z.number().int().positive(),
  hive_id: z.string().min(1),
  /** Where the queen reaches this hive. */
  url: z.string(),
  version: z.string(),
  started_at: Timestamp,
  interval_ms: z.number().int().positive(),
  devices: z.array(Device),
  workers: z.array(HiveWorkerReport),
  models: z.array(HiveModel),
  /** The hive's worker catalog: the worker types it can run, with their engines. */
  worker_types: z.array(InstalledWorkerType).optional(),
  /**
   * True in the last heartbeat of a hive that stops gracefully (its workers already stopped): the
   * queen routes and places nothing there from then on, until the hive heartbeats again.
   */
  stopping: z.boolean().optional(),
});
export type HiveHeartbeat = z.infer<typeof HiveHeartbeat>;
