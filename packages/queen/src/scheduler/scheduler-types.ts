import type { PlacementPolicy, WorkerCapability } from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import type { WorkerEntry } from "../registry/cluster-registry.js";
import type { ReplicaStore } from "../store/replica-store.js";
import type { ModelProgress } from "./hive-client.js";

/** The words and types the scheduler's modules share (scheduler.ts re-exports them). */

export type Narrate = (source: string, message: string) => void;

export const silent: Narrate = () => {};

/** Model ids compare in any case. */
export const norm = (s: string) => s.toLowerCase();

export interface ResolveOptions {
  signal?: AbortSignal;
  narrate?: Narrate;
  /** Download progress, when the model must be fetched. */
  progress?: (p: ModelProgress) => void;
  /** Only this hive (rbee model download --hive). */
  hive?: string;
  /** The worker type the model is fetched for (its estimate decides where it fits). */
  workerType?: string;
  /** The request comes from the cluster's administrator: a model named by its path may be anywhere (RequestFacts). */
  admin?: boolean;
}

export interface AcquireOptions {
  signal: AbortSignal;
  narrate?: Narrate;
  progress?: (p: ModelProgress) => void;
  /** Workers not to use (e.g. one that just failed this request). */
  exclude?: ReadonlySet<string>;
  /** A worker to use while it is not overloaded: the one that holds this conversation's prefix in its cache. */
  prefer?: string;
  /** What the request needs of a worker (default text generation). */
  capability?: WorkerCapability;
  /** The worker type to start when no worker serves the model (default: the model's minimum's, else the queen's). */
  workerType?: string;
  /** The request's keep-alive: a worker started for it gets this one from its spawn on (default the queen's). */
  keepAliveMs?: number;
  /** The request comes from the cluster's administrator (RequestFacts). */
  admin?: boolean;
}

/** A request's hold on a worker: release it when the request ends. */
export interface Lease {
  worker: WorkerEntry;
  model: string;
  /** Aborts when the worker's hive is lost while the request runs; its reason says so. */
  signal: AbortSignal;
  release(keepAliveMs?: number): void;
}

export interface SpawnOptions {
  hive?: string;
  /** Split the model over these devices as one worker group (`--devices hiveA:cpu,hiveB:cuda:0`). */
  devices?: ReadonlyArray<{ hive: string; device: string }>;
  device?: string;
  ctxSize?: number;
  parallel?: number;
  threads?: number;
  keepAliveMs: number;
  workerType?: string;
  /** The request comes from the cluster's administrator (RequestFacts). */
  admin?: boolean;
  /** The workers' configuration (a package type's config_schema says what it takes). */
  config?: Record<string, unknown>;
  /** What the workers it starts must serve (requests waiting for it need this). */
  capability?: WorkerCapability;
  policy?: PlacementPolicy;
  signal?: AbortSignal;
  narrate?: Narrate;
  progress?: (p: ModelProgress) => void;
}

export interface SchedulerOptions {
  maxWaitingPerModel: number;
  defaultKeepAliveMs: number;
  /** Placement policy when a spawn names none. */
  policy: PlacementPolicy;
  replicas: ReplicaStore;
  /**
   * How long after start minimums are left alone: a restarted queen learns the running workers from
   * the first round of heartbeats, and must not place duplicates before it has heard them.
   */
  settleMs: number;
  /** The worker type a model gets when neither the request nor its minimum names one. */
  defaultWorkerType: string;
  /** The same for an image request (image-generation); default the registry's. */
  defaultImageWorkerType?: string;
  log: Logger;
}

/** Counts for the queen's metrics. */
export interface SchedulerStats {
  /** Workers stopped to make room for another model. */
  evictions: number;
  /** Requests sent to the worker holding their conversation's prefix. */
  affinityHits: number;
  /** Workers placed anew for a model whose hive was lost, or to keep a minimum. */
  replacements: number;
  /** Hives found unreachable before their heartbeats aged. */
  suspectedHives: number;
}
