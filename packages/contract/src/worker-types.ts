import { z } from "zod";
import { ArtifactStatus, type GgufSummary } from "./catalog.js";
import { DeviceKind, Timestamp } from "./common.js";
import type { WorkerGroupSpawn } from "./group.js";
import type { HfConfigSummary } from "./hf-config.js";
import type { MemoryEstimate } from "./hive-api.js";
import { WorkerCapability } from "./worker.js";

/**
 * A worker type's id, e.g. "llm" or "llama-server": lower-case letters, digits and dashes, as it
 * appears in `--type`, in worker ids and in `<cache>/workers/<type-id>/`.
 */
export const WorkerTypeId = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,39}$/, "must be a worker type id such as llm or llama-server (see `rbee worker types`)");
export type WorkerTypeId = z.infer<typeof WorkerTypeId>;

/** What a worker type loads: a GGUF file, a Hugging Face repo directory, a workflow, or nothing. */
export const WorkerArtifact = z.enum(["gguf", "hf-repo", "workflow", "none"]);
export type WorkerArtifact = z.infer<typeof WorkerArtifact>;

/** Where an engine binary came from: built by rbee, added by hand, or found on PATH. */
export const EngineSource = z.enum(["built", "added", "path", "bundled"]);
export type EngineSource = z.infer<typeof EngineSource>;

/** One engine binary (or bundled build) on a machine, as its hive found it. */
export const EngineBinary = z.looseObject({
  /** The engine's id: "llama-server", "ggml-rpc-server", "node-llama-cpp", ... */
  id: z.string().min(1),
  path: z.string(),
  version: z.string().optional(),
  source: EngineSource,
  /** The GPU backend it was built for ("cpu", "cuda", "vulkan", "metal"). */
  backend: z.string().optional(),
  status: z.enum(["ok", "broken"]),
  /** Why it is broken, with the path: "exec format error", "not executable", ... */
  error: z.string().optional(),
});
export type EngineBinary = z.infer<typeof EngineBinary>;

/**
 * A worker type as a hive's worker catalog lists it (`<cache>/workers/<type-id>/metadata.json`,
 * `GET /v1/worker-types`, the hive heartbeat): what it serves, where it runs, and whether it can run
 * on this machine (its engine found).
 */
export const InstalledWorkerType = z.looseObject({
  id: WorkerTypeId,
  description: z.string(),
  version: z.string(),
  capabilities: z.array(WorkerCapability),
  device_kinds: z.array(DeviceKind),
  artifact: WorkerArtifact,
  /** "Available": it can be spawned here; "Failed": its engine is missing or broken (see `error`). */
  status: ArtifactStatus,
  /** The engine binaries (or builds) it runs with on this machine. */
  engines: z.array(EngineBinary),
  /** Device kinds of this machine it can run on now (its kinds, narrowed by the builds found). */
  runs_on: z.array(DeviceKind).optional(),
  /** Why it cannot run here, and how to install what it needs. */
  error: z.string().optional(),
  updated_at: Timestamp.optional(),
});
export type InstalledWorkerType = z.infer<typeof InstalledWorkerType>;

/** `GET /v1/worker-types` on a hive. */
export const HiveWorkerTypes = z.looseObject({
  hive_id: z.string(),
  worker_types: z.array(InstalledWorkerType),
});
export type HiveWorkerTypes = z.infer<typeof HiveWorkerTypes>;

/** `GET /v1/worker-types` on the queen: every hive's catalog, and per type where it can run. */
export const ClusterWorkerTypes = z.looseObject({
  /** The type a model gets when nothing chooses another (the queen's default). */
  default_type: WorkerTypeId,
  hives: z.array(HiveWorkerTypes.extend({ state: z.string() })),
  types: z.array(
    z.looseObject({
      id: WorkerTypeId,
      description: z.string(),
      capabilities: z.array(WorkerCapability),
      device_kinds: z.array(DeviceKind),
      /** Hives where it is Available. */
      available_on: z.array(z.string()),
      /** Hives that list it but cannot run it (engine missing or broken), with why. */
      missing_on: z.array(z.looseObject({ hive_id: z.string(), error: z.string() })),
    }),
  ),
});
export type ClusterWorkerTypes = z.infer<typeof ClusterWorkerTypes>;

/** What a worker type's memory estimate reads of a model: its size and, for a GGUF, its header; for a Hugging Face repo, its config.json. */
export interface ModelFacts {
  size_bytes: number;
  gguf?: GgufSummary | undefined;
  hf_config?: HfConfigSummary | undefined;
}

/** What a worker is started with (the hive's spawn request, resolved against its catalogs). */
export interface LaunchSpec {
  workerId: string;
  modelId: string;
  /** The model's file (GGUF) or directory; undefined for a type whose artifact is "none". */
  modelPath?: string | undefined;
  device: string;
  deviceKind: DeviceKind;
  ctxSize?: number | undefined;
  parallel?: number | undefined;
  threads?: number | undefined;
  maxQueue?: number | undefined;
  /** Paths of the engine binaries the type needs, by engine id (from the hive's worker catalog). */
  engines: Readonly<Record<string, string>>;
  /** A member of a worker group: the group as spawned, and a shard's RPC port (chosen by its hive). */
  group?: (WorkerGroupSpawn & { rpc_port?: number | undefined }) | undefined;
  /** The worker's configuration, checked against the type's configSchema, defaults filled in. */
  config?: Record<string, unknown> | undefined;
}

/** What the hive tells every worker it starts. */
export interface LaunchContext {
  /** The node binary (process.execPath) and the rbee CLI entry. */
  node: string;
  rbeeBin: string;
  host: string;
  port: number;
  heartbeatUrl: string;
  heartbeatIntervalMs: number;
  orphanTimeoutMs: number;
  shutdownGraceMs: number;
}

/** A process to start: the hive runs `command args...` with `env` added to the workers' environment. */
export interface LaunchCommand {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

/**
 * One worker type, described once: the hive launches and provisions from it, the queen places by
 * its memory estimate and routes by its capabilities. Every type registers one of these in
 * `@rbee/worker-types`.
 */
export interface WorkerTypeDescriptor {
  readonly id: string;
  /** One line for `rbee worker types`. */
  readonly description: string;
  readonly capabilities: readonly WorkerCapability[];
  /** Device kinds it can run on (narrowed per machine by the engine builds found there). */
  readonly deviceKinds: readonly DeviceKind[];
  readonly artifact: WorkerArtifact;
  /** The engine binary it needs from the machine's engines (e.g. "llama-server"); none for an in-process engine. */
  readonly engine?: string | undefined;
  /**
   * The type runs without a binary of its `engine` too (an adapter that attaches to an engine already
   * running, such as the user's own Ollama): the catalog shows it Available on every device kind of
   * the type even when no binary is found, and a launch gets the binary only when there is one.
   */
  readonly engineOptional?: boolean | undefined;
  /** What to tell a user whose machine lacks the engine. */
  readonly installHint?: string | undefined;
  /** Context per sequence and parallel sequences when a spawn names none. */
  readonly defaults: { readonly maxContextSize: number; readonly parallel: number };
  /** Memory a worker of this type needs for a model on a kind of device. */
  estimateMemory(
    model: ModelFacts,
    o: { deviceKind: DeviceKind; contextSize?: number; parallel?: number },
  ): MemoryEstimate;
  /** The process that serves the worker contract for a spawn. */
  launch(spec: LaunchSpec, ctx: LaunchContext): LaunchCommand;
  /** How long the hive waits for GET /health to answer 200 before it gives up (default: the hive's). */
  readonly readyTimeoutMs?: number | undefined;
  /** The configuration its workers take (a package's `config_schema`); none when undefined. */
  readonly configSchema?: Readonly<Record<string, unknown>> | undefined;
  /**
   * What it runs with that ships inside rbee (an in-process engine's builds, a worker program), as
   * found on this machine; a type with an `engine` gets its binaries from the machine's engines instead.
   */
  bundledEngines?(): EngineBinary[];
}

/**
 * What a llama.cpp worker (the llm worker, llama-server) runs with when a spawn names nothing:
 * the model's own context per sequence, at most `maxContextSize`, and `parallel` sequences.
 */
export const LLAMA_CPP_DEFAULTS = Object.freeze({ maxContextSize: 4096, parallel: 4 });

/** How long llama-server may take to load its model before its adapter gives up (below the hive's 120 s). */
export const DEFAULT_ENGINE_START_TIMEOUT_MS = 100_000;

/** How long vLLM or trtllm-serve may take to be ready (below the vllm/trtllm types' 15-minute ready timeout in the hive). */
export const DEFAULT_OPENAI_ENGINE_START_TIMEOUT_MS = 14 * 60_000;

/** The context per sequence a llama.cpp worker uses for a model whose training context is `trained` (0: unknown). */
export function defaultContextSize(trained: number | undefined): number {
  return Math.min(trained || LLAMA_CPP_DEFAULTS.maxContextSize, LLAMA_CPP_DEFAULTS.maxContextSize);
}

/**
 * The memory estimate of an adapter whose engine manages (and reports) its own memory, such as
 * Ollama or ComfyUI: only the adapter's node process, 96 MiB.
 */
export function adapterProcessEstimate(
  o: { contextSize?: number; parallel?: number },
  parallel: number,
): MemoryEstimate {
  const bytes = 96 * 1024 * 1024;
  return {
    weights: 0,
    kv_cache: 0,
    compute: 0,
    overhead: bytes,
    total: bytes,
    context_size: o.contextSize ?? 4096,
    parallel: o.parallel ?? parallel,
  };
}

/** Seconds as the CLI's duration flags take them ("0.5", "60"). */
function seconds(ms: number): string {
  return String(Math.round(ms) / 1000);
}

/**
 * The command that starts a worker served by the rbee CLI itself:
 * `node <rbee> worker serve <type> --model=<path> --model-id=<id> --worker-id=<id> --port=<port> ...`
 * (the llm worker, and adapters whose process is rbee's). Values go in the `--flag=value` form, so
 * that none is ever read as a flag; `extra` flags follow the standard ones.
 */
export function rbeeServeCommand(
  type: string,
  spec: LaunchSpec,
  ctx: LaunchContext,
  extra: readonly string[] = [],
): LaunchCommand {
  if (spec.modelPath === undefined) throw new Error(`worker '${spec.workerId}' has no model file to start with`);
  const args = [
    ctx.rbeeBin,
    "worker",
    "serve",
    type,
    `--model=${spec.modelPath}`,
    `--model-id=${spec.modelId}`,
    `--worker-id=${spec.workerId}`,
    `--host=${ctx.host}`,
    `--port=${ctx.port}`,
    `--device=${spec.device}`,
    `--heartbeat-url=${ctx.heartbeatUrl}`,
    `--heartbeat-interval=${seconds(ctx.heartbeatIntervalMs)}`,
    `--orphan-timeout=${seconds(ctx.orphanTimeoutMs)}`,
    `--shutdown-grace=${seconds(ctx.shutdownGraceMs)}`,
  ];
  if (spec.ctxSize !== undefined) args.push(`--ctx-size=${spec.ctxSize}`);
  if (spec.parallel !== undefined) args.push(`--parallel=${spec.parallel}`);
  if (spec.threads !== undefined) args.push(`--threads=${spec.threads}`);
  if (spec.maxQueue !== undefined) args.push(`--max-queue=${spec.maxQueue}`);
  return { command: ctx.node, args: [...args, ...extra] };
}

/**
 * The environment the hive gives every worker it starts, whatever its type: a worker built on the
 * worker kit (`runWorker`) reads its id, address, heartbeat target and model from it, so that a
 * type's launch can be just `node <its entry>`.
 */
export function workerLaunchEnv(spec: LaunchSpec, ctx: LaunchContext): Record<string, string> {
  const env: Record<string, string> = {
    RBEE_WORKER_ID: spec.workerId,
    RBEE_WORKER_HOST: ctx.host,
    RBEE_WORKER_PORT: String(ctx.port),
    RBEE_HEARTBEAT_URL: ctx.heartbeatUrl,
    RBEE_HEARTBEAT_INTERVAL_MS: String(Math.round(ctx.heartbeatIntervalMs)),
    RBEE_ORPHAN_TIMEOUT_MS: String(Math.round(ctx.orphanTimeoutMs)),
    RBEE_SHUTDOWN_GRACE_MS: String(Math.round(ctx.shutdownGraceMs)),
    RBEE_MODEL_ID: spec.modelId,
    RBEE_DEVICE: spec.device,
  };
  if (spec.modelPath !== undefined) env.RBEE_MODEL_PATH = spec.modelPath;
  if (spec.maxQueue !== undefined) env.RBEE_MAX_QUEUE = String(spec.maxQueue);
  if (spec.config !== undefined) env.RBEE_WORKER_CONFIG = JSON.stringify(spec.config);
  return env;
}
