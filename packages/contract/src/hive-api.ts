import { z } from "zod";
import { GgufSummary, ModelFormat } from "./catalog.js";
import { Bytes, DeviceId, HttpUrl, SafeId } from "./common.js";
import { WorkerGroupSpawn } from "./group.js";
import { HiveModel } from "./hive.js";
import { WorkerConfig } from "./worker-config.js";
import { WorkerTypeId } from "./worker-types.js";

/**
 * The hive's HTTP API, called by the queen (and by the CLI through the queen). Every route but
 * `GET /health` wants the cluster token.
 *
 * - `GET  /v1/info`               → HiveHeartbeat (the same picture the hive sends the queen)
 * - `GET  /v1/workers`            → { workers: HiveWorkerReport[], spare_pid: number | null } (the spare llm worker process, if one waits)
 * - `POST /v1/workers`            SpawnWorkerRequest → HiveWorkerReport once the worker is Ready
 *                                 (the request waits; a client that goes away stops the spawn)
 * - `DELETE /v1/workers/{id}`     → HiveWorkerReport after the worker stopped
 * - `GET  /v1/workers/{id}/logs`  ?tail=N → text/plain, the worker's last log lines
 * - `POST /v1/models`             ResolveModelRequest → HiveModel: finds a model and adds it to the catalog,
 *                                 downloading it when needed. With `Accept: text/event-stream` the answer
 *                                 is a stream of ModelEvent (`narration`, `progress`, then `done` or
 *                                 `error`); a client that goes away stops the download (the part stays).
 *                                 With `peers`, a model this hive lacks is fetched from another hive first
 * - `GET  /v1/models/{id}`        → SharedModel: the entry with its files' names, sizes and sha256 (what
 *                                 another hive needs to fetch it; a sha256 missing so far is computed
 *                                 once and kept in the catalog)
 * - `GET  /v1/models/{id}/files/{name}` → the file's bytes, with Range (206, 416) and HEAD: how one hive
 *                                 fetches a model from another on the LAN
 * - `POST /v1/models/inspect`     InspectModelRequest → ModelInspection (reads only the GGUF header)
 * - `GET  /v1/models`             → { models: HiveModel[] } (every entry, broken ones as Failed)
 * - `DELETE /v1/models/{id}`      → HiveModel (the entry and the files the catalog holds; never a
 *                                 file used in place)
 * - `POST /v1/worker-heartbeat`   WorkerHeartbeat → HeartbeatReply (from the hive's workers)
 * - `GET  /v1/worker-types`       → HiveWorkerTypes: the hive's worker catalog (types, engines, status)
 */

/**
 * Set by the queen when the request it serves comes from the cluster's administrator (the cluster
 * token, or a queen without API keys, on loopback): a model file may then be named anywhere on the
 * hive's machine outside system directories, not only in the directories the hive allows for
 * everyone else (docs/security.md).
 */
const AnyPath = z.boolean().optional();

export const SpawnWorkerRequest = z.strictObject({
  /** A worker type of the hive's worker catalog (GET /v1/worker-types); default "llm". */
  worker_type: WorkerTypeId.default("llm"),
  /** A model id of the hive's catalog (see POST /v1/models). */
  model: z.string().min(1),
  device: DeviceId.default("cpu"),
  worker_id: SafeId.optional(),
  ctx_size: z.number().int().min(16).optional(),
  parallel: z.number().int().min(1).max(256).optional(),
  /** CPU threads; at most the cores of this machine. */
  threads: z.number().int().min(1).max(1024).optional(),
  max_queue: z.number().int().min(0).optional(),
  /** How long the spawn may take before it fails (and the worker is stopped). Default 120 s. */
  ready_timeout_ms: z.number().int().positive().optional(),
  /**
   * The queen's keep-alive for this worker (ms; null is forever). The hive only keeps it and reports
   * it back, so that a restarted queen knows it again.
   */
  keep_alive_ms: z.number().nonnegative().nullable().optional(),
  /**
   * The memory the queen reserved for this worker on its device (its estimate). The hive keeps it and
   * reports it back, so that placement counts it until the device's own figures show it.
   */
  memory_bytes: z.number().int().nonnegative().optional(),
  /** The worker is a member of a worker group (a shard, or the group's coordinator). */
  group: WorkerGroupSpawn.optional(),
  /**
   * The worker's configuration, checked against its package's `config_schema` (defaults filled in)
   * and given to it as RBEE_WORKER_CONFIG; a type without a schema takes none.
   */
  config: WorkerConfig.optional(),
  any_path: AnyPath,
});
export type SpawnWorkerRequest = z.input<typeof SpawnWorkerRequest>;

/** Another hive that holds a model, where this hive can fetch it (with the cluster token). */
export const ModelPeer = z.strictObject({
  hive_id: z.string().min(1),
  /** The peer hive's URL, as the queen reaches it (its advertised URL). */
  url: HttpUrl,
});
export type ModelPeer = z.infer<typeof ModelPeer>;

export const ResolveModelRequest = z.strictObject({
  /**
   * A model reference: a catalog id, an absolute path of a GGUF file on the hive's machine, or a
   * Hugging Face reference.
   */
  ref: z.string().min(1),
  /**
   * Hives that already hold the model (the queen knows them from their heartbeats), tried in order
   * before the internet when this hive's catalog lacks the model. The model is asked for by its
   * catalog id: `ref` itself, or the id a Hugging Face reference with a file gets. When none of them
   * delivers, the hive falls back to the reference's own source and says why.
   */
  peers: z.array(ModelPeer).max(32).optional(),
  any_path: AnyPath,
  /** `hf-repo`: `ref` names a Hugging Face repo to fetch whole (safetensors, config, tokenizer), for vLLM or TensorRT-LLM. */
  format: ModelFormat.optional(),
});
export type ResolveModelRequest = z.infer<typeof ResolveModelRequest>;

/** One file of a model as a hive shares it: fetch it at `GET /v1/models/{id}/files/{name}`. */
export const SharedModelFile = z.looseObject({
  /** The file's name (no directories): the last segment of its URL. */
  name: z.string().min(1),
  size_bytes: Bytes,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type SharedModelFile = z.infer<typeof SharedModelFile>;

/** `GET /v1/models/{id}`: a model of the hive's catalog with what another hive needs to fetch it. */
export const SharedModel = HiveModel.extend({
  /** The catalog's version of the entry (a Hugging Face revision, or "local"). */
  version: z.string().optional(),
  files: z.array(SharedModelFile).min(1),
});
export type SharedModel = z.infer<typeof SharedModel>;

export const InspectModelRequest = z.strictObject({
  ref: z.string().min(1),
  /** Tokens of context per sequence for the estimate; default the model's, at most 4096. */
  ctx_size: z.number().int().min(16).optional(),
  parallel: z.number().int().min(1).max(256).optional(),
  any_path: AnyPath,
});
export type InspectModelRequest = z.infer<typeof InspectModelRequest>;

/** Memory a worker needs for a model at a context size and a number of parallel sequences, in bytes. */
export const MemoryEstimate = z.looseObject({
  weights: Bytes,
  kv_cache: Bytes,
  compute: Bytes,
  overhead: Bytes,
  total: Bytes,
  context_size: z.number().int().positive(),
  parallel: z.number().int().positive(),
});
export type MemoryEstimate = z.infer<typeof MemoryEstimate>;

/** `POST /v1/models/inspect`: what a model is, before (or without) downloading it. */
export const ModelInspection = z.looseObject({
  ref: z.string(),
  /** The catalog id the model has or would get. */
  model_id: z.string(),
  /** Where the header was read: the catalog, a local file, the Hugging Face cache, or the Hub. */
  source: z.enum(["catalog", "local", "hf-cache", "huggingface"]),
  files: z.array(z.looseObject({ path: z.string(), size_bytes: Bytes })),
  /** For a repo without a file named: which file was picked and why. */
  picked: z.string().optional(),
  gguf: GgufSummary,
  /** What a llama.cpp worker needs for it on a CPU. */
  estimate: MemoryEstimate,
  /** What it needs with every layer on a GPU (the backend's own context counts). */
  gpu_estimate: MemoryEstimate.optional(),
  /** Bytes read over the network to learn all this (0 for local files). */
  bytes_fetched: Bytes,
  /** Already in this hive's catalog. */
  model: HiveModel.optional(),
});
export type ModelInspection = z.infer<typeof ModelInspection>;
