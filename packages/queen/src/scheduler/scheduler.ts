import { isAbsolute } from "node:path";
import {
  type Device,
  type HiveModel,
  InsufficientMemoryError,
  type ModelFacts,
  ModelNotFoundError,
  type PlacementPolicy,
  QueueFullError,
  RbeeError,
  type WorkerCapability,
  type WorkerTypeDescriptor,
  WorkerUnavailableError,
  workerConfigFor,
} from "@rbee/contract";
import { type Logger, UnreachableError } from "@rbee/server-kit";
import {
  DEFAULT_IMAGE_WORKER_TYPE,
  DEFAULT_TYPE_BY_FORMAT,
  findWorkerType,
  UnknownWorkerTypeError,
  workerTypeIds,
} from "@rbee/worker-types";
import {
  type ClusterRegistry,
  type HiveEntry,
  type WorkerEntry,
  workerCapabilities,
} from "../registry/cluster-registry.js";
import type { ReplicaSpec, ReplicaStore } from "../store/replica-store.js";
import type { HiveClient, ModelProgress } from "./hive-client.js";
import { checkModality } from "./modality.js";
import {
  choosePlacement,
  type DeviceLoad,
  estimateWorkerMemory,
  formatBytes,
  hiveRuns,
  type Placement,
  type PlacementCandidate,
  typeNotInstalledError,
  usableMemory,
} from "./placement.js";
import { reportedWorkerType } from "./reported-worker-type.js";
import { WorkerGroups } from "./worker-groups.js";

export type Narrate = (source: string, message: string) => void;

export interface ResolveOptions {
  signal?: AbortSignal;
  narrate?: Narrate;
  /** Download progress, when the model must be fetched. */
  progress?: (p: ModelProgress) => void;
  /** Only this hive (rbee model download --hive). */
  hive?: string;
  /** The worker type the model is fetched for (its estimate decides where it fits). */
  workerType?: string;
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

interface PendingSpawn {
  promise: Promise<WorkerEntry>;
  waiters: number;
  abort: AbortController;
  /** Started for waiting requests (not by hand, for a minimum or for a lost hive): stopped when they all go away. */
  forRequests: boolean;
  model: string;
  hiveId: string;
  deviceId: string;
  needBytes: number;
  /** The type being started: requests join it only if it serves what they need. */
  workerType: WorkerTypeDescriptor;
  /** Started in place of a lost hive's worker or for a minimum: given up if that hive comes back. */
  replacement?: boolean;
}

/** How long a hive has to answer /health when one of its workers refused a connection. */
const PROBE_TIMEOUT_MS = 1000;
/** How long what a hive said it holds is trusted before its heartbeats show it. */
const PROVISIONED_MEMORY_MS = 30_000;
/** A model whose minimum could not be restored is tried again after this, doubling up to a minute. */
const REPLICA_RETRY_MS = 2000;
/** A model that failed to start on a hive is not started there for requests again before this, doubling up to a minute. */
const SPAWN_RETRY_MS = 2000;
const SPAWN_RETRY_MAX_MS = 60_000;

const silent: Narrate = () => {};
const norm = (s: string) => s.toLowerCase();

/**
 * Decides where requests go (queen = smart, hives and workers = dumb):
 * 1. a ready worker for the model: the one holding the conversation's prefix while it is not
 *    overloaded, else the one with the fewest requests in flight per slot;
 * 2. none: place a new one by memory and policy (spread or pack), preferring hives that hold the
 *    file (others fetch it from them on the LAN), and let requests for the model wait (bounded) while
 *    it loads;
 * 3. nothing fits: make room by stopping workers of other models that were started for requests
 *    (never pinned ones), letting their requests finish first; requests for several models that
 *    contend for one device are served a model at a time, in groups, not swapped per request;
 * 4. still nothing: an error naming what the model needs and the largest free device.
 * It also keeps per-model minimums of replicas (placing new ones when some are lost) and fails
 * requests in flight on a hive that is lost, so that their clients hear at once.
 */
export class Scheduler {
  /** Counts for the queen's metrics. */
  readonly stats = {
    /** Workers stopped to make room for another model. */
    evictions: 0,
    /** Requests sent to the worker holding their conversation's prefix. */
    affinityHits: 0,
    /** Workers placed anew for a model whose hive was lost, or to keep a minimum. */
    replacements: 0,
    /** Hives found unreachable before their heartbeats aged. */
    suspectedHives: 0,
  };
  #pending = new Map<string, PendingSpawn>();
  #spawnSeq = 0;
  #waiting = new Map<string, number>();
  #leases = new Map<string, Set<AbortController>>();
  #changeWaiters = new Set<() => void>();
  #changeQueued = false;
  #replicaRetry = new Map<string, { failures: number; at: number }>();
  /** Workers started in place of a lost hive's or for a minimum: the first to go when that hive comes back. */
  #replacements = new Set<string>();
  /** Failed starts by "model\0hive": requests do not start the model there again until `until`. */
  #spawnFailures = new Map<string, { err: unknown; failures: number; at: number; until: number }>();
  readonly #startedAt = Date.now();
  #provisioned = new Map<string, Map<string, { model: HiveModel; at: number }>>();
  /** Models split over several devices (worker-groups.ts). */
  readonly groups: WorkerGroups;

  constructor(
    private readonly registry: ClusterRegistry,
    private readonly hives: HiveClient,
    private readonly options: SchedulerOptions,
  ) {
    this.groups = new WorkerGroups(registry, hives, {
      log: options.log,
      freeOn: (hive, device) => usableMemory(hive, device, this.#load("")),
      holders: (model) => this.#holders(model).map((h) => ({ hive: h.hive, facts: h.model })),
      failInFlight: (workerId, error) => {
        for (const lease of this.#leases.get(workerId) ?? []) lease.abort(error);
      },
      changed: () => this.#changed(),
    });
    registry.subscribe((e) => {
      if (e.type === "hive_state" && (e.state === "lost" || e.reason !== undefined)) {
        const why =
          e.state === "lost"
            ? `hive ${e.hive_id} was lost (no heartbeat for 6 intervals)`
            : `hive ${e.hive_id} is unreachable (${e.reason})`;
        this.#hiveDown(e.hive_id, why);
      }
      // after the rest of its heartbeat (its workers) is in
      if (e.type === "hive_state" && e.state === "live") setImmediate(() => this.#trimReplacements(e.hive_id));
      if (e.type === "worker_removed") this.#replacements.delete(e.worker_id);
      if (e.type !== "worker_added") this.#changed();
    });
  }

  /** Requests waiting for a worker of some model to come up. */
  get waiting(): number {
    let n = 0;
    for (const v of this.#waiting.values()) n += v;
    return n;
  }

  /** Finds or makes a worker for `modelRef` and takes a slot on it. */
  async acquire(modelRef: string, o: AcquireOptions): Promise<Lease> {
    const capability = o.capability ?? "text-generation";
    const ready = this.#pick(modelRef, o.exclude, o.prefer, capability);
    if (ready) return this.#lease(ready, ready.report.model);
    checkModality(this.registry, this.options.replicas, modelRef, capability);
    const type = this.workerTypeFor(modelRef, o.workerType, capability);
    // a type that loads nothing (the echo example) serves the name it is given: no catalog has it
    const { model, hiveModels } =
      type.artifact === "none"
        ? { model: modelRef.toLowerCase(), hiveModels: [] }
        : await this.resolveModel(modelRef, { ...o, workerType: type.id });
    const again = this.#pick(model, o.exclude, o.prefer, capability);
    if (again) return this.#lease(again, model);
    const worker = await this.#waitForWorker(model, hiveModels, { ...o, capability }, type);
    return this.#lease(worker, model);
  }

  /**
   * The worker type a new worker for a model is started as: the one asked for, else the one its
   * minimum was set with, else the queen's default; it must serve `capability`.
   * @throws UnknownWorkerTypeError (400) listing the types the hives have; RbeeError 400
   *   `worker_type_capability` for a type that does not serve what the request needs.
   */
  workerTypeFor(model: string, asked: string | undefined, capability?: WorkerCapability): WorkerTypeDescriptor {
    const fallback =
      capability === "image-generation"
        ? (this.options.defaultImageWorkerType ?? DEFAULT_IMAGE_WORKER_TYPE)
        : this.options.defaultWorkerType;
    const id = asked ?? this.options.replicas.get(model)?.worker_type ?? this.#typeForFormat(model) ?? fallback;
    const type = this.findType(id);
    if (type === undefined) throw new UnknownWorkerTypeError(id, this.installedTypes(), "the hives have");
    if (capability !== undefined && !type.capabilities.includes(capability)) {
      throw new RbeeError(
        `worker type '${type.id}' does not serve ${capability} (it serves ${type.capabilities.join(", ")}); choose another type (rbee worker types)`,
        { statusCode: 400, code: "worker_type_capability", param: "worker_type" },
      );
    }
    return type;
  }

  /**
   * The type for a model a hive holds as a Hugging Face repo (format hf-repo), which only the types
   * that load repos can serve: the default for repos (vllm) when a hive has it, else another such
   * type a hive has, else the default (whose placement then says where it is not installed).
   * Undefined for a GGUF or a model no hive holds yet.
   */
  #typeForFormat(model: string): string | undefined {
    if (this.#holders(model)[0]?.model.format !== "hf-repo") return undefined;
    const installed = this.installedTypes();
    const fallback = DEFAULT_TYPE_BY_FORMAT["hf-repo"];
    if (installed.includes(fallback)) return fallback;
    return (
      workerTypeIds().find((id) => findWorkerType(id)?.artifact === "hf-repo" && installed.includes(id)) ?? fallback
    );
  }

  /** A built-in worker type, or one a live hive installed from a package. */
  findType(id: string): WorkerTypeDescriptor | undefined {
    return findWorkerType(id) ?? reportedWorkerType(id, this.registry.hives.values());
  }

  /** Worker types installed on at least one live hive (or known to rbee, before any hive reported). */
  installedTypes(): string[] {
    const ids = new Set<string>();
    let reported = false;
    for (const h of this.registry.hives.values()) {
      if (h.state === "lost" || h.workerTypes === undefined) continue;
      reported = true;
      for (const t of h.workerTypes) if (t.status === "Available") ids.add(t.id);
    }
    return reported ? [...ids].sort() : workerTypeIds();
  }

  /**
   * Turns what a client asked for into a model id the hives know: an id (any case) of a running
   * worker or of a hive's catalog; an absolute path of a GGUF file, which the hive that has the file
   * adds to its catalog; or a reference a hive can fetch (owner/repo[:file], hf://…, a short name):
   * then the fit is planned from the GGUF header before a byte of the model is fetched, and the
   * hive with a device that fits it downloads it.
   */
  async resolveModel(
    ref: string,
    o: ResolveOptions = {},
  ): Promise<{ model: string; hiveModels: Array<{ hive: HiveEntry; model: HiveModel }> }> {
    const onHive = (h: { hive: HiveEntry }) => o.hive === undefined || h.hive.id === o.hive;
    const known = () => {
      const found = this.#holders(ref).find(onHive);
      if (found) return { model: found.model.id, hiveModels: this.#holders(found.model.id) };
      const running = [...this.registry.workers.values()].find((w) => norm(w.report.model) === norm(ref));
      if (running && o.hive === undefined) return { model: running.report.model, hiveModels: [] };
      return undefined;
    };
    // a queen just started may not have heard the hives yet: wait for one (the one pinned), not longer
    const heard = () => {
      const live = this.#liveHives(false);
      return live.length > 0 && (o.hive === undefined || live.some((h) => h.id === o.hive));
    };
    if (!known() && !heard()) await this.#firstHeartbeatRound(() => known() !== undefined || heard(), o.signal);
    const now = known();
    if (now) return now;
    if (o.hive !== undefined) this.#requireLiveHive(o.hive);
    if (isAbsolute(ref))
      return this.#registerPath(
        ref,
        this.#liveHives().filter((hive) => onHive({ hive })),
        o,
      );
    const live = this.#liveHives(false);
    if (live.length === 0) {
      throw new ModelNotFoundError(
        ref,
        "no worker serves it and no hive is connected that could fetch it; start one with `rbee hive start`",
      );
    }
    const type = o.workerType === undefined ? undefined : findWorkerType(o.workerType);
    if (type?.artifact === "hf-repo") return this.#fetchRepo(ref, live, o, type);
    return this.#fetch(ref, live, o);
  }

  /** A hive a request pins (`hive`) that cannot take work now is a clear error, whatever else would fail later. */
  #requireLiveHive(id: string): void {
    if (this.#liveHives(false).some((h) => h.id === id)) return;
    const known = [...this.registry.hives.keys()].join(", ") || "none";
    const state = this.registry.hives.get(id)?.state;
    throw new RbeeError(`hive '${id}' is not connected${state ? ` (it is ${state})` : ""}; hives: ${known}`, {
      statusCode: 400,
      code: "hive_not_found",
      param: "hive",
    });
  }

  /**
   * A queen that has just started has not heard from the hives yet (they retry within an interval):
   * a request then would be told that no hive could serve or fetch its model, although the hive
   * that holds it is about to report. Until the first round of heartbeats is over (settleMs), wait
   * for `ready` (the model known, or a hive heard from) rather than answer that.
   */
  async #firstHeartbeatRound(ready: () => boolean, signal?: AbortSignal): Promise<void> {
    const left = this.#startedAt + this.options.settleMs - Date.now();
    if (left <= 0 || signal?.aborted) return;
    await new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener("abort", finish);
        resolve();
      };
      const timer = setTimeout(finish, left);
      const unsubscribe = this.registry.subscribe(() => {
        if (ready()) finish();
      });
      signal?.addEventListener("abort", finish, { once: true });
    });
  }

  /** Hives that can take work now, those on the queen's own machine first; none is an error unless `required` is false. */
  #liveHives(required = true): HiveEntry[] {
    const live = [...this.registry.hives.values()].filter((h) => this.registry.isUsable(h) && h.url !== "");
    if (live.length === 0 && required) {
      throw new RbeeError("no hive is connected to the queen; start one with `rbee hive start` (or `rbee up`)", {
        statusCode: 503,
        code: "no_hives",
        retryable: true,
        retryAfterSeconds: 5,
      });
    }
    const local = (h: HiveEntry) => (/\/\/(127\.|localhost|\[::1\])/.test(h.url) ? 0 : 1);
    return live.sort((a, b) => local(a) - local(b));
  }

  async #registerPath(ref: string, live: HiveEntry[], o: ResolveOptions) {
    const errors: string[] = [];
    for (const hive of live) {
      try {
        const model = await this.hives.provisionModel(hive, ref, {}, o.signal);
        this.#remember(hive, model);
        return { model: model.id, hiveModels: [{ hive, model }] };
      } catch (err) {
        if (o.signal?.aborted) throw err;
        errors.push(`hive ${hive.id}: ${(err as Error).message}`);
      }
    }
    throw new ModelNotFoundError(ref, `no hive could use it (${errors.join("; ")})`);
  }

  /**
   * A Hugging Face repo for a type that loads repos (vLLM, TensorRT-LLM): fetched whole by a hive
   * where that type is installed (the first live one, the queen's own machine first); the memory a
   * worker needs is estimated from its config.json once the hive has it. No hive has the type: 409
   * saying, per hive, why.
   */
  async #fetchRepo(ref: string, live: HiveEntry[], o: ResolveOptions, type: WorkerTypeDescriptor) {
    const narrate = o.narrate ?? silent;
    const chosen = live.filter((h) => o.hive === undefined || h.id === o.hive);
    const hive = chosen.find((h) => h.devices.some((d) => hiveRuns(h, type, d)));
    if (hive === undefined)
      throw typeNotInstalledError(
        type,
        chosen,
        live.filter((h) => !chosen.includes(h) && h.devices.some((d) => hiveRuns(h, type, d))).map((h) => h.id),
      );
    narrate("queen", `${ref}: a Hugging Face repo for worker type ${type.id}; fetching it on hive ${hive.id}`);
    const model = await this.hives.provisionModel(
      hive,
      ref,
      { narrate: (m) => narrate(`hive ${hive.id}`, m), progress: o.progress },
      o.signal,
      [],
      "hf-repo",
    );
    this.#remember(hive, model);
    return { model: model.id, hiveModels: this.#holders(model.id) };
  }

  /** A model no hive has: read its header (through a hive), choose where it fits, have that hive fetch it. */
  async #fetch(ref: string, live: HiveEntry[], o: ResolveOptions) {
    const narrate = o.narrate ?? silent;
    const reader = live.find((h) => h.id === o.hive) ?? (live[0] as HiveEntry);
    const inspection = await this.hives.inspectModel(reader, ref, undefined, undefined, o.signal);
    const already = this.#holders(inspection.model_id);
    if (already.some((h) => o.hive === undefined || h.hive.id === o.hive)) {
      return { model: inspection.model_id, hiveModels: already };
    }
    const sizeBytes = inspection.files.reduce((n, f) => n + f.size_bytes, 0);
    const facts: ModelFacts = { size_bytes: sizeBytes, gguf: inspection.gguf };
    const type = this.workerTypeFor(inspection.model_id, o.workerType);
    const candidates = live
      .filter((h) => o.hive === undefined || h.id === o.hive)
      .map((hive) => ({ hive, hasModel: false }));
    const placement = choosePlacement(candidates, this.#load(inspection.model_id), {
      policy: this.options.policy,
      workerType: type,
      need: (device) => estimateWorkerMemory(type, facts, device.kind),
    });
    narrate(
      "queen",
      `${inspection.model_id}: ${inspection.gguf.architecture} ${inspection.gguf.quantization}, ${formatBytes(sizeBytes)} to download, needs about ${formatBytes(placement.needBytes)}; fetching it on hive ${placement.hive.id}`,
    );
    const hive = placement.hive;
    // another hive that holds it shares it on the LAN rather than the internet
    const peers = already.map((h) => ({ hive_id: h.hive.id, url: h.hive.url }));
    const model = await this.hives.provisionModel(
      hive,
      ref,
      { narrate: (m) => narrate(`hive ${hive.id}`, m), progress: o.progress },
      o.signal,
      peers,
    );
    this.#remember(hive, model);
    return { model: model.id, hiveModels: this.#holders(model.id) };
  }

  /**
   * Remembers a model a hive just said it holds: the registry learns it from the hive's next
   * heartbeat, and one already on its way may still show it Downloading (or not at all).
   */
  #remember(hive: HiveEntry, model: HiveModel): void {
    const key = norm(model.id);
    const byHive = this.#provisioned.get(key) ?? new Map<string, { model: HiveModel; at: number }>();
    byHive.set(hive.id, { model, at: Date.now() });
    this.#provisioned.set(key, byHive);
    // and shown in the cluster's view (GET /v1/models) at once
    this.registry.modelAdded(hive.id, model.id);
    const current = this.registry.hives.get(hive.id);
    if (current) current.models = [...current.models.filter((m) => m.id !== model.id), model];
  }

  /** Live hives holding a model (by id, any case, or file path): as heartbeats reported, and as hives just said. */
  #holders(ref: string): Array<{ hive: HiveEntry; model: HiveModel }> {
    const found = this.registry.findModel(ref);
    const just = this.#provisioned.get(norm(ref));
    if (just === undefined) return found;
    const now = Date.now();
    for (const [hiveId, { model, at }] of just) {
      const hive = this.registry.hives.get(hiveId);
      const reported = hive?.models.find((m) => norm(m.id) === norm(model.id));
      // once the hive's own heartbeats carry it (or after a while), the registry's word is enough
      if (!hive || reported?.status === "Available" || now - at > PROVISIONED_MEMORY_MS) {
        just.delete(hiveId);
        continue;
      }
      if (this.registry.isUsable(hive) && !found.some((f) => f.hive.id === hiveId)) found.push({ hive, model });
    }
    if (just.size === 0) this.#provisioned.delete(norm(ref));
    return found;
  }

  /**
   * Spawns workers by request (rbee worker spawn). With `replicas`, the model's minimum is set (and
   * kept from now on) and as many workers are spawned as are missing; else one worker is spawned.
   */
  async spawn(modelRef: string, given: SpawnOptions & { replicas?: number }): Promise<WorkerEntry[]> {
    const type = this.workerTypeFor(modelRef, given.workerType);
    // a configuration the type refuses fails here, before any model is fetched (the hive checks again)
    workerConfigFor(type.id, type.configSchema, given.config);
    const o = { ...given, workerType: type.id };
    // not pinned to o.hive: a pinned hive without the model fetches it from another on the LAN
    const { model, hiveModels } =
      type.artifact === "none"
        ? { model: modelRef.toLowerCase(), hiveModels: [] }
        : await this.resolveModel(modelRef, {
            signal: o.signal,
            narrate: o.narrate,
            progress: o.progress,
            workerType: type.id,
          });
    if (o.hive !== undefined) this.#requireLiveHive(o.hive);
    if (hiveModels.length === 0 && type.artifact !== "none") {
      throw new WorkerUnavailableError(
        `no hive has ${model} in its catalog to start a worker from; see \`rbee model ls\``,
      );
    }
    if (o.devices !== undefined) return [await this.groups.spawn(model, o)];
    if (o.replicas === undefined) {
      try {
        return [await this.#launch(`${norm(model)}#${++this.#spawnSeq}`, model, o).promise];
      } catch (err) {
        // fits on no single device: split it over several, if their sum fits (else the group's refusal, with figures)
        if (!(err instanceof InsufficientMemoryError) || o.hive !== undefined || o.device !== undefined) throw err;
        if (!this.groups.splittable()) throw err;
        return [await this.groups.spawn(model, o)];
      }
    }
    const narrate = o.narrate ?? silent;
    if (o.replicas === 0) {
      this.options.replicas.set(model, undefined);
      narrate("queen", `${model} has no minimum of workers any more; its workers stay until stopped`);
      return this.#serving(model);
    }
    this.options.replicas.set(model, {
      replicas: o.replicas,
      policy: o.policy,
      hive: o.hive,
      device: o.device,
      ctx_size: o.ctxSize,
      parallel: o.parallel,
      threads: o.threads,
      worker_type: given.workerType,
      ...(given.config === undefined ? {} : { config: given.config }),
    });
    const have = this.#countReplicas(model);
    narrate(
      "queen",
      have >= o.replicas
        ? `${model} keeps at least ${o.replicas} workers; ${have} already run`
        : `${model} keeps at least ${o.replicas} workers: ${have} run, spawning ${o.replicas - have}`,
    );
    const spawns: Promise<WorkerEntry>[] = [];
    for (let i = have; i < o.replicas; i++) {
      spawns.push(this.#launch(`${norm(model)}#${++this.#spawnSeq}`, model, o).promise);
    }
    await Promise.all(spawns);
    return this.#serving(model);
  }

  /** Places workers for models below their minimum; the queen calls it every sweep. */
  reconcile(now = Date.now()): void {
    this.groups.sweep(now);
    if (now - this.#startedAt < this.options.settleMs) return;
    for (const [model, spec] of this.options.replicas.entries()) {
      const retry = this.#replicaRetry.get(model);
      if (retry && now < retry.at) continue;
      const missing = spec.replicas - this.#countReplicas(model);
      if (missing <= 0) continue;
      if (this.#holders(model).length === 0 && this.findType(spec.worker_type ?? "")?.artifact !== "none") {
        this.#failedReplica(model, new Error("no live hive has it in its catalog"), now);
        continue;
      }
      this.options.log.info({ model, missing, replicas: spec.replicas }, "placing workers to keep the minimum");
      for (let i = 0; i < missing; i++) this.#launchReplica(model, spec);
      this.stats.replacements += missing;
    }
  }

  /** The models kept at a minimum of workers, and how many count towards it now (GET /v1/cluster). */
  minimums(): Array<{ model: string; replicas: number; running: number; policy?: PlacementPolicy }> {
    return this.options.replicas.entries().map(([model, spec]) => ({
      model,
      replicas: spec.replicas,
      running: this.#countReplicas(model),
      policy: spec.policy,
    }));
  }

  /** Memory promised to workers being spawned on a device, which its free figure does not show yet. */
  promised(hiveId: string, deviceId: string): number {
    let n = 0;
    for (const p of this.#pending.values()) if (p.hiveId === hiveId && p.deviceId === deviceId) n += p.needBytes;
    return n;
  }

  #launchReplica(model: string, spec: ReplicaSpec): void {
    try {
      const pending = this.#launch(`${norm(model)}#${++this.#spawnSeq}`, model, {
        hive: spec.hive,
        device: spec.device,
        ctxSize: spec.ctx_size,
        parallel: spec.parallel,
        threads: spec.threads,
        policy: spec.policy,
        workerType: spec.worker_type,
        config: spec.config,
        keepAliveMs: Number.POSITIVE_INFINITY,
      });
      this.#markReplacement(pending);
      pending.promise.then(
        () => this.#replicaRetry.delete(norm(model)),
        (err: unknown) => this.#failedReplica(model, err, Date.now()),
      );
    } catch (err) {
      this.#failedReplica(model, err, Date.now());
    }
  }

  #failedReplica(model: string, err: unknown, now: number): void {
    const key = norm(model);
    const failures = (this.#replicaRetry.get(key)?.failures ?? 0) + 1;
    const delay = Math.min(60_000, REPLICA_RETRY_MS * 2 ** (failures - 1));
    this.#replicaRetry.set(key, { failures, at: now + delay });
    this.options.log.warn(
      { model, failures, retry_in_ms: delay, err: (err as Error).message },
      "could not place a worker to keep the model's minimum",
    );
  }

  /** Workers of a model that count towards its minimum: serving or starting on a live hive; and spawns under way. */
  #countReplicas(model: string): number {
    const m = norm(model);
    let n = this.registry.routableWorkers(model).length;
    n += this.registry.startingWorkers(model).filter((w) => !w.draining).length;
    for (const p of this.#pending.values()) if (norm(p.model) === m) n++;
    return n;
  }

  #serving(model: string): WorkerEntry[] {
    const m = norm(model);
    return [...this.registry.workers.values()].filter((w) => norm(w.report.model) === m && !w.stopping);
  }

  #pick(
    model: string,
    exclude: ReadonlySet<string> | undefined,
    prefer: string | undefined,
    capability: WorkerCapability,
  ): WorkerEntry | undefined {
    let best: WorkerEntry | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    let preferred: { worker: WorkerEntry; load: number } | undefined;
    for (const w of this.registry.routableWorkers(model, capability)) {
      if (exclude?.has(w.id)) continue;
      const load = w.inFlight / (w.report.heartbeat?.slots ?? 1);
      if (w.id === prefer) preferred = { worker: w, load };
      if (load < bestLoad || (load === bestLoad && best !== undefined && w.lastActivity < best.lastActivity)) {
        best = w;
        bestLoad = load;
      }
    }
    // the conversation's worker has its prefix cached: worth taking while it has a free slot
    if (preferred && (preferred.load < 1 || preferred.load <= bestLoad)) {
      this.stats.affinityHits++;
      return preferred.worker;
    }
    return best;
  }

  #lease(worker: WorkerEntry, model: string): Lease {
    worker.inFlight++;
    const abort = new AbortController();
    let leases = this.#leases.get(worker.id);
    if (!leases) {
      leases = new Set();
      this.#leases.set(worker.id, leases);
    }
    const held = leases;
    held.add(abort);
    let released = false;
    return {
      worker,
      model,
      signal: abort.signal,
      release: (keepAliveMs) => {
        if (released) return;
        released = true;
        worker.inFlight = Math.max(0, worker.inFlight - 1);
        worker.lastActivity = Date.now();
        if (keepAliveMs !== undefined) worker.keepAliveMs = keepAliveMs;
        held.delete(abort);
        if (held.size === 0) this.#leases.delete(worker.id);
        if (worker.inFlight === 0) this.#changed();
      },
    };
  }

  /** Catalog entries of a model that cannot be served (Failed: a file truncated or gone), said in words. */
  #unusableCopies(model: string): string {
    const key = norm(model);
    const found: string[] = [];
    for (const hive of this.registry.hives.values()) {
      for (const m of hive.models) {
        if (m.status !== "Available" && (norm(m.id) === key || m.path === model))
          found.push(`hive ${hive.id} has it, but it is ${m.status}${m.error ? `: ${m.error}` : ""}`);
      }
    }
    return found.length > 0 ? ` (${found.join("; ")})` : "";
  }

  async #waitForWorker(
    model: string,
    hiveModels: Array<{ hive: HiveEntry; model: HiveModel }>,
    o: AcquireOptions & { capability: WorkerCapability },
    type: WorkerTypeDescriptor,
  ): Promise<WorkerEntry> {
    const key = norm(model);
    const waiting = this.#waiting.get(key) ?? 0;
    if (waiting >= this.options.maxWaitingPerModel) {
      throw new QueueFullError(waiting, this.options.maxWaitingPerModel, 5);
    }
    this.#waiting.set(key, waiting + 1);
    let toldWaiting = false;
    let toldRestarting = false;
    try {
      for (let attempt = 1; ; attempt++) {
        // a spawn under way for the model (for requests, a minimum, or a lost hive's model) serves
        // these requests too, if its type serves what they need
        const serves = (p: PendingSpawn) => norm(p.model) === key && p.workerType.capabilities.includes(o.capability);
        let pending = [this.#pending.get(key), ...this.#pending.values()].find((p) => p !== undefined && serves(p));
        // a worker group of the model heals (or its coordinator restarts): wait for it, in this same bounded queue
        const group = pending ? undefined : this.groups.waitFor(model, o.signal);
        if (group) {
          o.narrate?.("queen", `waiting for the worker group of ${model} to serve again`);
          return await group;
        }
        if (!pending && type.artifact !== "none" && hiveModels.length === 0 && this.#holders(model).length === 0) {
          throw new WorkerUnavailableError(
            `no worker for ${model} can take requests now, and no hive has it in its catalog to start another${this.#unusableCopies(model)}; see \`rbee status\``,
          );
        }
        // a worker of the model its hive is (re)starting: wait for it rather than start a second one
        const restarting = pending
          ? undefined
          : this.registry.startingWorkers(model).find((w) => workerCapabilities(w).includes(o.capability));
        if (restarting) {
          if (!toldRestarting)
            o.narrate?.("queen", `waiting for worker ${restarting.id}, which hive ${restarting.hiveId} is restarting`);
          toldRestarting = true;
          await this.#nextChange(o.signal);
          const ready = this.#pick(model, o.exclude, o.prefer, o.capability);
          if (ready) return ready;
          attempt--;
          continue;
        }
        if (pending) o.narrate?.("queen", `waiting for the ${model} worker that is starting`);
        else {
          try {
            pending = this.#launch(`${key}@${type.id}`, model, {
              keepAliveMs: o.keepAliveMs ?? this.options.defaultKeepAliveMs,
              narrate: o.narrate,
              forRequests: true,
              workerType: type.id,
              capability: o.capability,
            });
          } catch (err) {
            // fits on no single device, and nothing is being swapped: split it over several (a worker
            // group; requests arriving meanwhile wait for it above), else the group's refusal with figures
            if (err instanceof InsufficientMemoryError && !this.#swapping() && this.groups.splittable())
              return await this.groups.spawn(model, {
                keepAliveMs: this.options.defaultKeepAliveMs,
                narrate: o.narrate,
              });
            // another model holds the memory and is being swapped: wait for the device, then try again
            if (!(err instanceof InsufficientMemoryError) || !this.#swapping()) throw err;
            if (!toldWaiting) o.narrate?.("queen", "waiting for memory: another model is being swapped in");
            toldWaiting = true;
            await this.#nextChange(o.signal);
            const ready = this.#pick(model, o.exclude, o.prefer, o.capability);
            if (ready) return ready;
            continue;
          }
        }
        pending.waiters++;
        try {
          return await abortable(pending.promise, o.signal);
        } catch (err) {
          // the hive chosen did not answer (its machine may have just died): find out, and place again
          if (!(err instanceof UnreachableError) || attempt >= 3 || o.signal.aborted) throw err;
          await this.checkHive(pending.hiveId);
        } finally {
          pending.waiters--;
          // the last request waiting for this worker went away: stop the spawn (the hive stops the worker)
          if (pending.waiters === 0 && o.signal.aborted && pending.forRequests)
            pending.abort.abort(new Error("every request waiting for this worker went away"));
        }
      }
    } finally {
      const n = (this.#waiting.get(key) ?? 1) - 1;
      if (n <= 0) this.#waiting.delete(key);
      else this.#waiting.set(key, n);
    }
  }

  /** True while a spawn is under way or a worker drains: memory is about to change hands. */
  #swapping(): boolean {
    if (this.#pending.size > 0) return true;
    for (const w of this.registry.workers.values()) if (w.draining) return true;
    return false;
  }

  /** Resolves at the next change of the cluster that may free a device (or after a second, to look again). */
  #nextChange(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#changeWaiters.delete(done);
        resolve();
      };
      const onAbort = () => {
        done();
        reject(signal.reason);
      };
      const timer = setTimeout(done, 1000);
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#changeWaiters.add(done);
    });
  }

  /**
   * Wakes whatever waits for a change, after the current turn: requests that were waiting for a
   * worker that just came up take their slots on it before anything else looks at it.
   */
  #changed(): void {
    if (this.#changeQueued || this.#changeWaiters.size === 0) return;
    this.#changeQueued = true;
    setImmediate(() => {
      this.#changeQueued = false;
      for (const wake of [...this.#changeWaiters]) wake();
    });
  }

  /**
   * The live hives a worker for `model` can go to and whether they hold it, with what placement
   * reads of the model (its size and GGUF header) for the type's estimate.
   */
  #candidates(
    model: string,
    o: SpawnOptions,
    type: WorkerTypeDescriptor,
  ): { candidates: PlacementCandidate[]; facts: ModelFacts } {
    const live = this.#liveHives(false).filter((hive) => o.hive === undefined || hive.id === o.hive);
    // a type that loads nothing can go to any hive
    if (type.artifact === "none")
      return { candidates: live.map((hive) => ({ hive, hasModel: true })), facts: { size_bytes: 0 } };
    const holders = this.#holders(model);
    const info = holders[0]?.model;
    if (info === undefined) return { candidates: [], facts: { size_bytes: 0 } };
    // a Hugging Face repo is not shared on the LAN (yet): only hives that hold it can start a worker for it
    if (info.format === "hf-repo")
      return {
        candidates: live
          .filter((hive) => holders.some((h) => h.hive.id === hive.id))
          .map((hive) => ({ hive, hasModel: true })),
        facts: info,
      };
    // hives without the file fetch it from a holder on the LAN
    return {
      candidates: live.map((hive) => ({ hive, hasModel: holders.some((h) => h.hive.id === hive.id) })),
      facts: info,
    };
  }

  #load(model: string): DeviceLoad {
    const m = norm(model);
    return {
      reserved: (h, d) => this.registry.reserved(h, d),
      promised: (h, d) => this.promised(h, d),
      replicas: (h) => {
        let n = 0;
        for (const w of this.registry.workers.values())
          if (w.hiveId === h && norm(w.report.model) === m && !w.stopping && !w.draining) n++;
        for (const p of this.#pending.values()) if (p.hiveId === h && norm(p.model) === m) n++;
        return n;
      },
    };
  }

  /**
   * Places and starts one spawn under `key`; requests for the model wait on its promise. One
   * `forRequests` (not by hand, for a minimum or a lost hive) may stop other models' workers to make
   * room, and is given up when every request waiting for it goes away.
   */
  #launch(key: string, model: string, o: SpawnOptions & { forRequests?: boolean }): PendingSpawn {
    const type = this.workerTypeFor(model, o.workerType, o.capability);
    const { candidates, facts } = this.#candidates(model, o, type);
    if (o.forRequests) this.#skipFailedHives(model, candidates);
    const need = (device: Device) =>
      estimateWorkerMemory(type, facts, device.kind, { contextSize: o.ctxSize, parallel: o.parallel });
    const placementOptions = {
      policy: o.policy ?? this.options.policy,
      device: o.device,
      workerType: type,
      need,
      elsewhere: (t: WorkerTypeDescriptor) =>
        o.hive === undefined
          ? []
          : this.#liveHives(false)
              .filter((h) => h.id !== o.hive && h.devices.some((d) => hiveRuns(h, t, d)))
              .map((h) => h.id),
    };
    let placement: Placement;
    let victims: WorkerEntry[] = [];
    try {
      placement = choosePlacement(candidates, this.#load(model), placementOptions);
    } catch (err) {
      const room =
        err instanceof InsufficientMemoryError && o.forRequests
          ? this.#findRoom(model, candidates, o, type, need)
          : undefined;
      if (!room) throw err;
      placement = room.placement;
      victims = room.victims;
    }
    const abort = new AbortController();
    const signal = o.signal ? AbortSignal.any([o.signal, abort.signal]) : abort.signal;
    const entry: PendingSpawn = {
      promise: undefined as unknown as Promise<WorkerEntry>,
      waiters: 0,
      abort,
      forRequests: o.forRequests === true,
      model,
      hiveId: placement.hive.id,
      deviceId: placement.device.id,
      needBytes: placement.needBytes,
      workerType: type,
    };
    this.#pending.set(key, entry);
    entry.promise = (async () => {
      if (victims.length > 0) await this.#evict(victims, model, placement, o.narrate ?? silent, signal);
      return this.#doSpawn(model, placement, o, signal);
    })().finally(() => {
      if (this.#pending.get(key) === entry) this.#pending.delete(key);
      this.#changed();
    });
    entry.promise.catch(() => {}); // the waiters see the error; without waiters it is only logged
    return entry;
  }

  /**
   * Where a model fits once workers of other models go: on one device, the fewest workers that were
   * started for requests (not pinned by hand or by a minimum), those already draining and idle ones
   * first, then the least recently used. Undefined when no device can make room.
   */
  #findRoom(
    model: string,
    candidates: PlacementCandidate[],
    o: SpawnOptions,
    type: WorkerTypeDescriptor,
    need: (device: Device) => number,
  ): { placement: Placement; victims: WorkerEntry[] } | undefined {
    const m = norm(model);
    const load = this.#load(model);
    const workerType = type.id;
    let best: { placement: Placement; victims: WorkerEntry[]; busy: number } | undefined;
    for (const { hive, hasModel } of candidates) {
      for (const device of hive.devices) {
        if (o.device !== undefined && device.id !== o.device) continue;
        if (!hiveRuns(hive, type, device)) continue;
        const needBytes = need(device);
        const evictable = [...this.registry.workers.values()]
          .filter(
            (w) =>
              w.hiveId === hive.id &&
              w.report.device === device.id &&
              norm(w.report.model) !== m &&
              !w.stopping &&
              Number.isFinite(w.keepAliveMs) &&
              this.options.replicas.get(w.report.model) === undefined,
          )
          .sort(
            (a, b) =>
              Number(b.draining) - Number(a.draining) ||
              Number(a.inFlight > 0) - Number(b.inFlight > 0) ||
              a.lastActivity - b.lastActivity,
          );
        let free = usableMemory(hive, device, load);
        const victims: WorkerEntry[] = [];
        for (const w of evictable) {
          if (free >= needBytes) break;
          victims.push(w);
          free += w.memoryBytes;
        }
        if (free < needBytes || victims.length === 0) continue;
        const busy = victims.filter((w) => w.inFlight > 0).length;
        if (!best || busy < best.busy || (busy === best.busy && victims.length < best.victims.length)) {
          best = { placement: { hive, device, needBytes, hasModel, workerType }, victims, busy };
        }
      }
    }
    return best;
  }

  /**
   * Leaves out the hives where the model failed to start within its backoff. When that leaves none
   * of those that could run it, the last failure is thrown at once (with when it is tried again),
   * rather than loading a model that fails to load again for every request.
   */
  #skipFailedHives(model: string, candidates: PlacementCandidate[]): void {
    const now = Date.now();
    let last: { err: unknown; at: number; until: number } | undefined;
    for (let i = candidates.length - 1; i >= 0; i--) {
      const failed = this.#spawnFailures.get(`${norm(model)}\0${(candidates[i] as PlacementCandidate).hive.id}`);
      if (failed === undefined || failed.until <= now) continue;
      candidates.splice(i, 1);
      if (last === undefined || failed.at > last.at) last = failed;
    }
    if (candidates.length > 0 || last === undefined) return;
    const inSeconds = Math.max(1, Math.ceil((last.until - now) / 1000));
    const message = `${last.err instanceof Error ? last.err.message : String(last.err)} (the last start of ${model} failed ${Math.round((now - last.at) / 1000)} s ago; it is tried again in ${inSeconds} s)`;
    const status = last.err instanceof RbeeError ? last.err.statusCode : 503;
    const code = last.err instanceof RbeeError ? last.err.code : "worker_start_failed";
    throw new RbeeError(message, { statusCode: status, code, retryAfterSeconds: inSeconds });
  }

  /** Lets the victims finish their requests (taking no new ones), then stops them. Aborting takes them back. */
  async #evict(
    victims: WorkerEntry[],
    model: string,
    placement: Placement,
    narrate: Narrate,
    signal: AbortSignal,
  ): Promise<void> {
    const names = victims.map((w) => `${w.id} (${w.report.model})`).join(", ");
    narrate(
      "queen",
      `making room for ${model} on ${placement.device.id} of hive ${placement.hive.id}: stopping ${names} once its requests finish`,
    );
    for (const w of victims) w.draining = true;
    try {
      while (victims.some((w) => w.inFlight > 0 && this.registry.workers.has(w.id))) await this.#nextChange(signal);
    } catch (err) {
      for (const w of victims) w.draining = false;
      throw err;
    }
    for (const w of victims) {
      if (!this.registry.workers.has(w.id) || w.stopping) continue;
      await this.stopWorker(w, `making room for ${model}`);
      this.stats.evictions++;
    }
  }

  async #doSpawn(model: string, placement: Placement, o: SpawnOptions, signal: AbortSignal): Promise<WorkerEntry> {
    const narrate = o.narrate ?? silent;
    const { hive, device, needBytes, workerType } = placement;
    if (!placement.hasModel) await this.#share(model, hive, o, signal);
    narrate(
      "queen",
      `spawning ${workerType} worker for ${model} on hive ${hive.id} (${device.id}; needs about ${formatBytes(needBytes)}, ${formatBytes(device.memory_free)} free)`,
    );
    const t0 = performance.now();
    const failureKey = `${norm(model)}\0${hive.id}`;
    let report: Awaited<ReturnType<HiveClient["spawnWorker"]>>;
    try {
      report = await this.hives.spawnWorker(
        hive,
        {
          worker_type: workerType,
          model,
          device: device.id,
          ctx_size: o.ctxSize,
          parallel: o.parallel,
          threads: o.threads,
          keep_alive_ms: Number.isFinite(o.keepAliveMs) ? o.keepAliveMs : null,
          memory_bytes: needBytes,
          ...(o.config === undefined ? {} : { config: o.config }),
        },
        signal,
      );
    } catch (err) {
      // a worker that could not start (not a cancelled spawn, not a hive out of reach: checkHive handles those)
      if (!signal.aborted && !(err instanceof UnreachableError)) {
        const failures = (this.#spawnFailures.get(failureKey)?.failures ?? 0) + 1;
        const now = Date.now();
        const until = now + Math.min(SPAWN_RETRY_MAX_MS, SPAWN_RETRY_MS * 2 ** (failures - 1));
        this.#spawnFailures.set(failureKey, { err, failures, at: now, until });
      }
      throw err;
    }
    this.#spawnFailures.delete(failureKey);
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    narrate(`hive ${hive.id}`, `worker ${report.worker_id} ready: model loaded in ${seconds} s`);
    this.options.log.info(
      { worker_id: report.worker_id, hive_id: hive.id, model, device: device.id, seconds: Number(seconds) },
      "worker spawned",
    );
    const entry = this.registry.addSpawnedWorker(hive.id, report, o.keepAliveMs);
    entry.memoryBytes = needBytes;
    return entry;
  }

  /** Has a hive fetch a model from the hives that hold it (on the LAN) before a worker starts there. */
  async #share(model: string, hive: HiveEntry, o: SpawnOptions, signal: AbortSignal): Promise<void> {
    const narrate = o.narrate ?? silent;
    const peers = this.registry
      .findModel(model)
      .filter((h) => h.hive.id !== hive.id)
      .map((h) => ({ hive_id: h.hive.id, url: h.hive.url }));
    narrate("queen", `hive ${hive.id} fetches ${model} from hive ${peers.map((p) => p.hive_id).join(", ")} on the LAN`);
    const fetched = await this.hives.provisionModel(
      hive,
      model,
      { narrate: (m) => narrate(`hive ${hive.id}`, m), progress: o.progress },
      signal,
      peers,
    );
    this.#remember(hive, fetched);
  }

  /**
   * A hive went away: its requests in flight fail now with a clear error (rather than when TCP gives
   * up), and models that now have no worker anywhere are placed anew where they fit.
   */
  #hiveDown(hiveId: string, why: string): void {
    const lost = [...this.registry.workers.values()].filter((w) => w.hiveId === hiveId);
    for (const w of lost) {
      for (const lease of this.#leases.get(w.id) ?? []) {
        lease.abort(
          new WorkerUnavailableError(`${why} while worker ${w.id} was answering; retry the request`, {
            worker_id: w.id,
            hive_id: hiveId,
          }),
        );
      }
    }
    // spawns under way there will not finish: their requests try another hive
    for (const p of this.#pending.values()) {
      const hive = this.registry.hives.get(p.hiveId);
      if (p.hiveId === hiveId) p.abort.abort(new UnreachableError(hive?.url ?? hiveId, why, `hive ${hiveId}`));
    }
    const models = new Map<string, WorkerEntry>();
    for (const w of lost) if (!w.stopping) models.set(norm(w.report.model), w);
    for (const w of models.values()) this.#placeAgain(w, hiveId);
  }

  /** Places a lost worker's model anew, unless a minimum (reconcile) or another worker already covers it. */
  #placeAgain(w: WorkerEntry, hiveId: string): void {
    const model = w.report.model;
    if (this.options.replicas.get(model) !== undefined || this.#countReplicas(model) > 0) return;
    const log = this.options.log;
    if (this.#holders(model).length === 0) {
      log.warn({ model, hive_id: hiveId }, "cannot place the lost hive's model again: no live hive has it");
      return;
    }
    log.info({ model, hive_id: hiveId, worker_id: w.id }, "placing the lost hive's model again");
    this.stats.replacements++;
    const failed = (err: unknown) =>
      log.warn({ model, err: (err as Error).message }, "could not place the lost hive's model again");
    try {
      const pending = this.#launch(`${norm(model)}#${++this.#spawnSeq}`, model, { keepAliveMs: w.keepAliveMs });
      this.#markReplacement(pending);
      pending.promise.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  #markReplacement(pending: PendingSpawn): void {
    pending.replacement = true;
    pending.promise.then(
      (w) => this.#replacements.add(w.id),
      () => {},
    );
  }

  /**
   * A hive came back (live again after stale or lost) with its workers, after their models were
   * placed elsewhere: each model keeps what its minimum asks (at least one worker), and the
   * replacements beyond that go: spawns still under way are given up (unless requests wait for
   * them), idle replacement workers are drained and stopped.
   */
  #trimReplacements(hiveId: string): void {
    const models = new Map<string, string>();
    for (const w of this.registry.workers.values())
      if (w.hiveId === hiveId && this.registry.isRoutable(w)) models.set(norm(w.report.model), w.report.model);
    for (const [m, model] of models) {
      let extra = this.#countReplicas(model) - Math.max(1, this.options.replicas.get(model)?.replicas ?? 0);
      const why = `hive ${hiveId} came back with a worker of ${model}`;
      for (const p of this.#pending.values()) {
        if (extra <= 0) break;
        if (!p.replacement || p.waiters > 0 || norm(p.model) !== m || p.hiveId === hiveId) continue;
        p.abort.abort(new Error(why));
        extra--;
      }
      for (const w of [...this.registry.workers.values()]) {
        if (extra <= 0) break;
        if (!this.#replacements.has(w.id) || norm(w.report.model) !== m || w.hiveId === hiveId) continue;
        if (w.stopping || w.draining) continue;
        extra--;
        this.#replacements.delete(w.id);
        this.options.log.info(
          { worker_id: w.id, model, hive_id: hiveId },
          "stopping a replacement: its hive came back",
        );
        this.drainWorker(w, why, new AbortController().signal).catch((err: unknown) =>
          this.options.log.warn({ worker_id: w.id, err: (err as Error).message }, "could not stop a replacement"),
        );
      }
    }
  }

  /**
   * A worker refused a connection: if its hive does not answer either, the machine is probably gone,
   * and the hive is treated as stale now rather than after three missed heartbeats.
   */
  async checkHive(hiveId: string): Promise<void> {
    const hive = this.registry.hives.get(hiveId);
    if (!hive?.url || hive.state !== "live") return;
    if (await this.hives.isReachable(hive, PROBE_TIMEOUT_MS)) return;
    this.stats.suspectedHives++;
    this.registry.suspect(hiveId, "a worker refused a connection and the hive did not answer");
  }

  /** Stops workers that have been idle longer than their keep-alive (not below a model's minimum). */
  async sweepIdle(now = Date.now()): Promise<void> {
    for (const w of this.registry.workers.values()) {
      if (w.stopping || w.inFlight > 0 || !Number.isFinite(w.keepAliveMs)) continue;
      if (now - w.lastActivity < w.keepAliveMs) continue;
      // still loading, or requests wait to take it (a spawn's keep-alive counts once it has served them)
      if (w.report.status === "Starting" || (this.#waiting.get(norm(w.report.model)) ?? 0) > 0) continue;
      const hive = this.registry.hives.get(w.hiveId);
      if (!hive?.url || hive.state !== "live") continue;
      const minimum = this.options.replicas.get(w.report.model)?.replicas ?? 0;
      if (minimum > 0 && this.#countReplicas(w.report.model) <= minimum) continue;
      await this.stopWorker(
        w,
        `idle for ${Math.round((now - w.lastActivity) / 1000)} s (keep-alive ${Math.round(w.keepAliveMs / 1000)} s)`,
      );
    }
  }

  /**
   * Drains a worker, then stops it: it takes no new request (requests for its model go to other
   * workers or wait for a new one), finishes those in flight, and is stopped once they are done.
   * Aborting the signal takes it back into service.
   */
  async drainWorker(w: WorkerEntry, reason: string, signal: AbortSignal, narrate: Narrate = silent): Promise<void> {
    w.draining = true;
    try {
      if (w.inFlight > 0) narrate("queen", `draining ${w.id}: waiting for its ${w.inFlight} request(s) in flight`);
      while (w.inFlight > 0 && this.registry.workers.has(w.id)) await this.#nextChange(signal);
    } catch (err) {
      w.draining = false;
      throw err;
    }
    if (!this.registry.workers.has(w.id) || w.stopping) return;
    narrate("queen", `${w.id} drained: stopping it on hive ${w.hiveId}`);
    await this.stopWorker(w, reason);
  }

  async stopWorker(w: WorkerEntry, reason: string): Promise<void> {
    const hive = this.registry.hives.get(w.hiveId);
    if (!hive?.url)
      throw new RbeeError(`worker ${w.id} was not started by a hive; stop it where it runs`, {
        statusCode: 400,
        code: "not_managed",
      });
    w.stopping = true;
    this.options.log.info({ worker_id: w.id, hive_id: hive.id, reason }, "stopping worker");
    try {
      await this.hives.stopWorker(hive, w.id);
      this.registry.removeWorker(w.id, reason, Date.now(), true);
      // a group's coordinator stopped by request: its shards go too
      if (w.report.group?.role === "coordinator") await this.groups.forget(w.id);
    } catch (err) {
      w.stopping = false;
      this.options.log.warn({ worker_id: w.id, err: (err as Error).message }, "could not stop worker");
      throw err;
    }
  }
}

/** Resolves like `promise`, or rejects with the signal's reason when it aborts first. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
