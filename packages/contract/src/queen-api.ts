import { z } from "zod";
import { DeviceId, HttpUrl, Timestamp } from "./common.js";
import { Device } from "./device.js";
import { HiveModel, WorkerExit } from "./hive.js";
import { ChatMessage, StopSequences } from "./infer.js";
import { MAX_IMAGES_PER_REQUEST } from "./protocol.js";
import { WorkerCapability, WorkerStatus } from "./worker.js";
import { WorkerConfig } from "./worker-config.js";
import { InstalledWorkerType, WorkerTypeId } from "./worker-types.js";

/**
 * How long a worker stays loaded after its last request, as Ollama takes it: a duration string
 * ("30s", "5m", "1h", "250ms"), a number of seconds, a negative number for "forever", 0 for
 * "stop as soon as the request is done".
 */
export const KeepAlive = z.union([
  z.number(),
  z.string().regex(/^-?\d+(\.\d+)?(ms|s|m|h)?$/, 'must be a duration like "30s", "5m", "1h", or a number of seconds'),
]);
export type KeepAlive = z.infer<typeof KeepAlive>;

/** Milliseconds for a KeepAlive; Infinity for "forever". */
export function keepAliveMs(value: KeepAlive): number {
  if (typeof value === "number") return value < 0 ? Number.POSITIVE_INFINITY : value * 1000;
  const m = /^(-?\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value);
  if (!m) throw new Error(`invalid keep_alive ${JSON.stringify(value)}`);
  const n = Number(m[1]);
  if (n < 0) return Number.POSITIVE_INFINITY;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"] ?? 1000;
  return n * unit;
}

const sampling = {
  max_tokens: z.number().int().min(1).optional(),
  temperature: z.number().min(0).max(10).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  min_p: z.number().min(0).max(1).optional(),
  repeat_penalty: z.number().min(0).max(10).optional(),
  presence_penalty: z.number().min(-2).max(2).optional(),
  frequency_penalty: z.number().min(-2).max(2).optional(),
  seed: z.number().int().min(0).max(0xffff_ffff).optional(),
  stop: StopSequences.optional(),
  json_schema: z.record(z.string(), z.unknown()).optional(),
};

/**
 * How the queen chooses a device among those where a model fits: `spread` puts replicas on different
 * hives and otherwise takes the device with the most free memory; `pack` takes the device with the
 * least free memory that still fits, keeping whole devices free for large models.
 */
export const PlacementPolicy = z.enum(["spread", "pack"]);
export type PlacementPolicy = z.infer<typeof PlacementPolicy>;

/** What a job does. The CLI's `rbee infer`, `rbee worker spawn` and `rbee worker stop` are jobs. */
export const JobOperation = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("infer"),
    /** A model id, or the absolute path of a GGUF file on one of the hives' machines. */
    model: z.string().min(1),
    prompt: z.string().optional(),
    messages: z.array(ChatMessage).min(1).optional(),
    keep_alive: KeepAlive.optional(),
    /** The worker type to start when no worker serves the model yet (default: the model's, else the queen's). */
    worker_type: WorkerTypeId.optional(),
    ...sampling,
  }),
  z.strictObject({
    type: z.literal("image"),
    /** A model that generates images (for ComfyUI: a checkpoint name). */
    model: z.string().min(1),
    prompt: z.string().min(1),
    negative_prompt: z.string().optional(),
    n: z.number().int().min(1).max(MAX_IMAGES_PER_REQUEST).optional(),
    width: z.number().int().optional(),
    height: z.number().int().optional(),
    steps: z.number().int().min(1).max(200).optional(),
    seed: z.number().int().min(0).max(0xffff_ffff).optional(),
    keep_alive: KeepAlive.optional(),
    /** The worker type to start when no worker serves the model yet (default: the queen's image type). */
    worker_type: WorkerTypeId.optional(),
  }),
  z.strictObject({
    type: z.literal("spawn_worker"),
    model: z.string().min(1),
    /**
     * Split the model over these devices as one worker group: `<hive>:<device>` each
     * (`gpu-box:cuda:0`, `laptop:cpu`), at least two.
     */
    devices: z
      .array(
        z
          .string()
          .regex(/^[^:\s]+:(cpu|(cuda|metal|vulkan|rocm):\d{1,3})$/, "must be <hive>:<device>, e.g. gpu-box:cuda:0"),
      )
      .min(2)
      .max(64)
      .optional(),
    /** The worker type (rbee worker types); default: the model's, else the queen's default type. */
    worker_type: WorkerTypeId.optional(),
    /** The worker's configuration, checked against its package's `config_schema` (RBEE_WORKER_CONFIG). */
    config: WorkerConfig.optional(),
    hive: z.string().optional(),
    device: DeviceId.optional(),
    ctx_size: z.number().int().min(16).optional(),
    parallel: z.number().int().min(1).max(256).optional(),
    /** CPU threads; at most the cores of the hive it lands on (checked when the job is created). */
    threads: z.number().int().min(1).max(1024).optional(),
    /** Default for a worker spawned by hand: it stays until stopped. */
    keep_alive: KeepAlive.optional(),
    /**
     * Keep at least this many workers of the model (spread over hives by default) and place new ones
     * when some go away; kept by the queen across restarts. 0 forgets the minimum (running workers
     * stay until stopped). Without it, one worker is spawned and nothing is kept.
     */
    replicas: z.number().int().min(0).max(64).optional(),
    /** Where new workers go: `spread` over hives and devices (default), or `pack` them onto the fullest device that fits. */
    policy: PlacementPolicy.optional(),
  }),
  z.strictObject({
    type: z.literal("stop_worker"),
    worker_id: z.string().min(1),
    /** Drain first: route nothing new to it and stop it once its requests in flight are done. */
    drain: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal("download_model"),
    /** A model reference: owner/repo[:file], hf://…, a short name, an absolute path. */
    model: z.string().min(1),
    hive: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal("model_info"),
    model: z.string().min(1),
    hive: z.string().optional(),
    ctx_size: z.number().int().min(16).optional(),
    parallel: z.number().int().min(1).max(256).optional(),
  }),
  z.strictObject({
    type: z.literal("remove_model"),
    model: z.string().min(1),
    hive: z.string().optional(),
  }),
  z.strictObject({
    type: z.literal("install_worker_package"),
    id: WorkerTypeId,
    /** Default: the newest version the catalog has. */
    version: z.string().optional(),
    /** Catalog servers to look in, in order (default: the queen's, RBEE_CATALOG_URLS). */
    catalogs: z.array(HttpUrl).min(1).optional(),
    /** One hive (default: every live hive). */
    hive: z.string().optional(),
    /** Install even if it is unsigned or signed by a key the hives do not trust. */
    allow_unsigned: z.boolean().optional(),
    /** Keep it up to date within its major version (the queen checks its catalog). */
    auto_update: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal("update_worker_package"),
    /** Default: every installed package. */
    id: WorkerTypeId.optional(),
    hive: z.string().optional(),
    /** Also to a new major version. */
    major: z.boolean().optional(),
  }),
  z.strictObject({
    type: z.literal("uninstall_worker_package"),
    id: WorkerTypeId,
    hive: z.string().optional(),
  }),
]);
export type JobOperation = z.infer<typeof JobOperation>;

export const CreateJobRequest = z.strictObject({ operation: JobOperation });
export type CreateJobRequest = z.infer<typeof CreateJobRequest>;

export const HiveState = z.enum(["live", "stale", "lost"]);
export type HiveState = z.infer<typeof HiveState>;

/** A worker as the queen sees it: its hive's report plus what the queen itself tracks. */
export const ClusterWorker = z.looseObject({
  worker_id: z.string(),
  hive_id: z.string(),
  worker_type: z.string(),
  /** What it serves; requests reach only workers whose capabilities cover them. */
  capabilities: z.array(WorkerCapability),
  model: z.string(),
  device: DeviceId,
  url: z.string(),
  pid: z.number().int().positive().nullable(),
  status: WorkerStatus,
  /** False when it, or its hive, is stale or lost: nothing new is routed to it. */
  routable: z.boolean(),
  /** True while its hive hears no heartbeat from it (3 intervals): it is not routed to. */
  stale: z.boolean().optional(),
  /** Memory the queen counts the worker as holding on its device (its estimate at placement). */
  memory_bytes: z.number().nonnegative().optional(),
  /** True while it finishes its requests before being stopped to make room for another model. */
  draining: z.boolean().optional(),
  /** True from the moment the queen asks its hive to stop it until it is gone. */
  stopping: z.boolean().optional(),
  slots: z.number().int().positive(),
  /** Requests the queen has routed to it and not seen finish. */
  in_flight: z.number().int().nonnegative(),
  requests_total: z.number().int().nonnegative(),
  tokens_generated: z.number().int().nonnegative(),
  tokens_per_second: z.number().nonnegative(),
  restarts: z.number().int().nonnegative(),
  last_exit: WorkerExit.nullable(),
  /** How long it stays after its last request; null is forever. */
  keep_alive_ms: z.number().nonnegative().nullable(),
  idle_ms: z.number().nonnegative(),
  vram_used: z.number().nonnegative(),
});
export type ClusterWorker = z.infer<typeof ClusterWorker>;

/** A worker group as `/v1/cluster` shows it: one model over several devices, one endpoint (its coordinator). */
export const ClusterGroup = z.looseObject({
  group_id: z.string(),
  model: z.string(),
  /** healthy: every member serves; degraded: a member is lost and the group heals; failed: it cannot (see reason). */
  health: z.enum(["healthy", "degraded", "failed"]),
  reason: z.string().optional(),
  coordinator: z.string(),
  members: z.array(
    z.looseObject({
      worker_id: z.string(),
      role: z.enum(["coordinator", "shard"]),
      hive_id: z.string(),
      device: z.string(),
      /** A shard's share of the model (its --tensor-split entry) and the memory planned for it. */
      fraction: z.number().optional(),
      memory_bytes: z.number().nonnegative().optional(),
      status: z.string(),
    }),
  ),
  /** Times the group was rebuilt after losing a member. */
  heals: z.number().int().nonnegative(),
});
export type ClusterGroup = z.infer<typeof ClusterGroup>;

export const ClusterHive = z.looseObject({
  id: z.string(),
  url: z.string(),
  version: z.string(),
  state: HiveState,
  last_seen_ms: z.number().nonnegative(),
  started_at: Timestamp,
  devices: z.array(Device),
  models: z.array(HiveModel),
  /** Its last heartbeat said it stops: nothing is routed or placed there (it turns stale, then lost, as it goes quiet). */
  stopping: z.boolean().optional(),
});
export type ClusterHive = z.infer<typeof ClusterHive>;

/** `GET /v1/cluster`. */
export const ClusterSnapshot = z.looseObject({
  queen: z.looseObject({ version: z.string(), started_at: Timestamp, url: z.string() }),
  hives: z.array(ClusterHive),
  workers: z.array(ClusterWorker),
  models: z.array(z.string()),
  /** Worker groups (a model split over several devices); their members are among `workers`. */
  groups: z.array(ClusterGroup).optional(),
  /** Models the queen keeps a minimum of workers of (rbee worker spawn --replicas), and how many count now. */
  minimums: z
    .array(
      z.looseObject({
        model: z.string(),
        replicas: z.number().int(),
        running: z.number().int(),
        policy: PlacementPolicy.optional(),
      }),
    )
    .optional(),
});
export type ClusterSnapshot = z.infer<typeof ClusterSnapshot>;

/**
 * `GET /v1/events`: changes to the cluster, as SSE. The first event is a `snapshot` with the whole
 * ClusterSnapshot; after it, one event per change.
 */
export const ClusterEvent = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("snapshot"), at: z.number(), cluster: ClusterSnapshot }),
  z.looseObject({ type: z.literal("hive_joined"), at: z.number(), hive_id: z.string(), url: z.string() }),
  z.looseObject({
    type: z.literal("hive_state"),
    at: z.number(),
    hive_id: z.string(),
    state: HiveState,
    /** Why, when it is not the age of its heartbeats ("its worker refused a connection and it did not answer"). */
    reason: z.string().optional(),
  }),
  z.looseObject({ type: z.literal("worker_added"), at: z.number(), worker: ClusterWorker }),
  z.looseObject({
    type: z.literal("worker_status"),
    at: z.number(),
    worker_id: z.string(),
    status: WorkerStatus,
    from: WorkerStatus,
  }),
  z.looseObject({ type: z.literal("worker_removed"), at: z.number(), worker_id: z.string(), reason: z.string() }),
  /**
   * A worker starts draining (it takes no new request and finishes its own before it is stopped),
   * or is taken back into service (`draining: false`: the drain was cancelled).
   */
  z.looseObject({
    type: z.literal("worker_draining"),
    at: z.number(),
    worker_id: z.string(),
    draining: z.boolean(),
    reason: z.string(),
  }),
  /**
   * The queen asks a worker's hive to stop it (`stopping: true`; `worker_removed` follows once it
   * is gone), or the stop failed and it serves on (`stopping: false`).
   */
  z.looseObject({
    type: z.literal("worker_stopping"),
    at: z.number(),
    worker_id: z.string(),
    stopping: z.boolean(),
    reason: z.string(),
  }),
  /**
   * A hive's heartbeat says it stops gracefully (`stopping: true`: nothing is routed or placed there
   * from now on), or a hive that said so heartbeats again as a running hive (`stopping: false`).
   */
  z.looseObject({ type: z.literal("hive_stopping"), at: z.number(), hive_id: z.string(), stopping: z.boolean() }),
  /**
   * A hive's catalogs changed: the models it holds (one added, removed, downloading, failed) or its
   * worker catalog (a worker type or engine installed, removed or updated). Both lists are whole.
   */
  z.looseObject({
    type: z.literal("hive_catalog"),
    at: z.number(),
    hive_id: z.string(),
    models: z.array(HiveModel),
    /** Absent for a hive too old to report a worker catalog. */
    worker_types: z.array(InstalledWorkerType).optional(),
  }),
]);
export type ClusterEvent = z.infer<typeof ClusterEvent>;

/** An API key as listed (the secret itself is shown once, when created). */
export const ApiKeyInfo = z.looseObject({
  id: z.string(),
  name: z.string(),
  /** The first characters of the key, to tell keys apart. */
  prefix: z.string(),
  created_at: Timestamp,
  /** An admin key may create and revoke keys too (the dashboard's Keys view); others only use the API. */
  admin: z.boolean().optional(),
});
export type ApiKeyInfo = z.infer<typeof ApiKeyInfo>;

export const CreateApiKeyRequest = z.strictObject({
  name: z.string().min(1).max(64).default("default"),
  /** May this key create and revoke keys? Default false: only the cluster token and admin keys can. */
  admin: z.boolean().default(false),
});

/** `GET /v1/catalog`: every hive's catalog entries (Downloading and Failed ones too). */
export const CatalogListing = z.looseObject({
  models: z.array(HiveModel.extend({ hive_id: z.string() })),
});
export type CatalogListing = z.infer<typeof CatalogListing>;
