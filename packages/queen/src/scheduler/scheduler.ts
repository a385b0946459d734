import { isAbsolute } from "node:path";
import {
  type HiveModel,
  ModelNotFoundError,
  QueueFullError,
  RbeeError,
  type WorkerType,
  WorkerUnavailableError,
} from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import type { ClusterRegistry, HiveEntry, WorkerEntry } from "../registry/cluster-registry.js";
import type { HiveClient, ModelProgress } from "./hive-client.js";
import { choosePlacement, estimateModelMemory, formatBytes } from "./placement.js";

export type Narrate = (source: string, message: string) => void;

export interface ResolveOptions {
  signal?: AbortSignal;
  narrate?: Narrate;
  /** Download progress, when the model must be fetched. */
  progress?: (p: ModelProgress) => void;
  /** Only this hive (rbee model download --hive). */
  hive?: string;
}

export interface AcquireOptions {
  signal: AbortSignal;
  narrate?: Narrate;
  progress?: (p: ModelProgress) => void;
  /** Workers not to use (e.g. one that just failed this request). */
  exclude?: ReadonlySet<string>;
}

/** A request's hold on a worker: release it when the request ends. */
export interface Lease {
  worker: WorkerEntry;
  model: string;
  release(keepAliveMs?: number): void;
}

export interface SpawnOptions {
  hive?: string;
  device?: string;
  ctxSize?: number;
  parallel?: number;
  threads?: number;
  keepAliveMs: number;
  workerType?: WorkerType;
  signal?: AbortSignal;
  narrate?: Narrate;
  progress?: (p: ModelProgress) => void;
}

interface PendingSpawn {
  promise: Promise<WorkerEntry>;
  waiters: number;
  abort: AbortController;
  hiveId: string;
  deviceId: string;
  needBytes: number;
}

const silent: Narrate = () => {};

/**
 * Decides where requests go (queen = smart, hives and workers = dumb):
 * 1. a ready worker for the model, the one with the fewest requests in flight per slot;
 * 2. none: place a new one on a hive that holds the model and a device where it fits, ask that hive
 *    to spawn it, and let requests for the model wait (bounded) while it loads;
 * 3. nothing fits: an error naming what the model needs and the largest free device.
 */
export class Scheduler {
  #pending = new Map<string, PendingSpawn>();
  #spawnSeq = 0;
  #waiting = new Map<string, number>();

  constructor(
    private readonly registry: ClusterRegistry,
    private readonly hives: HiveClient,
    private readonly options: { maxWaitingPerModel: number; defaultKeepAliveMs: number; log: Logger },
  ) {}

  /** Requests waiting for a worker of some model to come up. */
  get waiting(): number {
    let n = 0;
    for (const v of this.#waiting.values()) n += v;
    return n;
  }

  /** Finds or makes a worker for `modelRef` and takes a slot on it. */
  async acquire(modelRef: string, o: AcquireOptions): Promise<Lease> {
    const ready = this.#pick(modelRef, o.exclude);
    if (ready) return this.#lease(ready, ready.report.model);
    const { model, hiveModels } = await this.resolveModel(modelRef, o);
    const again = this.#pick(model, o.exclude);
    if (again) return this.#lease(again, model);
    const worker = await this.#waitForWorker(model, hiveModels, o);
    return this.#lease(worker, model);
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
    const found = this.registry.findModel(ref)[0];
    if (found) return { model: found.model.id, hiveModels: this.registry.findModel(found.model.id) };
    const running = [...this.registry.workers.values()].find((w) => w.report.model.toLowerCase() === ref.toLowerCase());
    if (running) return { model: running.report.model, hiveModels: [] };
    if (isAbsolute(ref)) return this.#registerPath(ref, this.#liveHives(), o);
    const live = this.#liveHives(false);
    if (live.length === 0) {
      throw new ModelNotFoundError(
        ref,
        "no worker serves it and no hive is connected that could fetch it; start one with `rbee hive start`",
      );
    }
    return this.#fetch(ref, live, o);
  }

  /** Hives that can take work now, those on the queen's own machine first; none is an error unless `required` is false. */
  #liveHives(required = true): HiveEntry[] {
    const live = [...this.registry.hives.values()].filter((h) => h.state === "live" && h.url !== "");
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

  /** A model no hive has: read its header (through a hive), choose where it fits, have that hive fetch it. */
  async #fetch(ref: string, live: HiveEntry[], o: ResolveOptions) {
    const narrate = o.narrate ?? silent;
    const reader = live.find((h) => h.id === o.hive) ?? (live[0] as HiveEntry);
    const inspection = await this.hives.inspectModel(reader, ref, undefined, undefined, o.signal);
    const already = this.registry.findModel(inspection.model_id);
    if (already.length > 0) return { model: inspection.model_id, hiveModels: already };
    const sizeBytes = inspection.files.reduce((n, f) => n + f.size_bytes, 0);
    const candidates = live
      .filter((h) => o.hive === undefined || h.id === o.hive)
      .map((hive) => ({ hive, needBytes: estimateModelMemory({ size_bytes: sizeBytes, gguf: inspection.gguf }) }));
    const placement = choosePlacement(candidates, (h, d) => this.promised(h, d));
    narrate(
      "queen",
      `${inspection.model_id}: ${inspection.gguf.architecture} ${inspection.gguf.quantization}, ${formatBytes(sizeBytes)} to download, needs about ${formatBytes(placement.needBytes)}; fetching it on hive ${placement.hive.id}`,
    );
    const hive = placement.hive;
    const model = await this.hives.provisionModel(
      hive,
      ref,
      { narrate: (m) => narrate(`hive ${hive.id}`, m), progress: o.progress },
      o.signal,
    );
    this.#remember(hive, model);
    return { model: model.id, hiveModels: [{ hive, model }] };
  }

  /** Adds a model a hive just reported to the registry's copy of its catalog, before its next heartbeat. */
  #remember(hive: HiveEntry, model: HiveModel): void {
    hive.models = [...hive.models.filter((m) => m.id !== model.id), model];
  }

  /** Spawns a worker by request (rbee worker spawn), not for a waiting request. */
  async spawn(modelRef: string, o: SpawnOptions): Promise<WorkerEntry> {
    const { model, hiveModels } = await this.resolveModel(modelRef, {
      signal: o.signal,
      narrate: o.narrate,
      progress: o.progress,
      hive: o.hive,
    });
    let candidates = hiveModels;
    if (o.hive !== undefined) {
      candidates = hiveModels.filter((c) => c.hive.id === o.hive);
      if (candidates.length === 0) {
        const known = [...this.registry.hives.keys()].join(", ") || "none";
        throw new RbeeError(`hive '${o.hive}' does not have model ${model} (or is not connected); hives: ${known}`, {
          statusCode: 400,
          code: "hive_not_found",
          param: "hive",
        });
      }
    }
    return this.#launch(`${model.toLowerCase()}#${++this.#spawnSeq}`, model, candidates, o).promise;
  }

  /** Memory promised to workers being spawned on a device, which its free figure does not show yet. */
  promised(hiveId: string, deviceId: string): number {
    let n = 0;
    for (const p of this.#pending.values()) if (p.hiveId === hiveId && p.deviceId === deviceId) n += p.needBytes;
    return n;
  }

  #pick(model: string, exclude?: ReadonlySet<string>): WorkerEntry | undefined {
    let best: WorkerEntry | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (const w of this.registry.routableWorkers(model)) {
      if (exclude?.has(w.id)) continue;
      const load = w.inFlight / (w.report.heartbeat?.slots ?? 1);
      if (load < bestLoad || (load === bestLoad && best !== undefined && w.lastActivity < best.lastActivity)) {
        best = w;
        bestLoad = load;
      }
    }
    return best;
  }

  #lease(worker: WorkerEntry, model: string): Lease {
    worker.inFlight++;
    let released = false;
    return {
      worker,
      model,
      release: (keepAliveMs) => {
        if (released) return;
        released = true;
        worker.inFlight = Math.max(0, worker.inFlight - 1);
        worker.lastActivity = Date.now();
        if (keepAliveMs !== undefined) worker.keepAliveMs = keepAliveMs;
      },
    };
  }

  async #waitForWorker(
    model: string,
    hiveModels: Array<{ hive: HiveEntry; model: HiveModel }>,
    o: AcquireOptions,
  ): Promise<WorkerEntry> {
    const key = model.toLowerCase();
    const waiting = this.#waiting.get(key) ?? 0;
    if (waiting >= this.options.maxWaitingPerModel) {
      throw new QueueFullError(waiting, this.options.maxWaitingPerModel, 5);
    }
    this.#waiting.set(key, waiting + 1);
    try {
      let pending = this.#pending.get(key);
      if (!pending && hiveModels.length === 0) {
        throw new WorkerUnavailableError(
          `no worker for ${model} can take requests now, and no hive has it in its catalog to start another; see \`rbee status\``,
        );
      }
      if (pending) o.narrate?.("queen", `waiting for the ${model} worker that is starting`);
      else
        pending = this.#launch(key, model, hiveModels, {
          keepAliveMs: this.options.defaultKeepAliveMs,
          narrate: o.narrate,
        });
      pending.waiters++;
      try {
        return await abortable(pending.promise, o.signal);
      } finally {
        pending.waiters--;
        // the last request waiting for this worker went away: stop the spawn (the hive stops the worker)
        if (pending.waiters === 0 && o.signal.aborted)
          pending.abort.abort(new Error("every request waiting for this worker went away"));
      }
    } finally {
      const n = (this.#waiting.get(key) ?? 1) - 1;
      if (n <= 0) this.#waiting.delete(key);
      else this.#waiting.set(key, n);
    }
  }

  /** Places and starts one spawn under `key`; requests for the model wait on its promise. */
  #launch(
    key: string,
    model: string,
    candidates: Array<{ hive: HiveEntry; model: HiveModel }>,
    o: SpawnOptions,
  ): PendingSpawn {
    const placement = choosePlacement(
      candidates.map(({ hive, model: m }) => ({
        hive,
        needBytes: estimateModelMemory(m, { contextSize: o.ctxSize, parallel: o.parallel }),
      })),
      (h, d) => this.promised(h, d),
      { device: o.device },
    );
    const abort = new AbortController();
    const signal = o.signal ? AbortSignal.any([o.signal, abort.signal]) : abort.signal;
    const entry: PendingSpawn = {
      promise: undefined as unknown as Promise<WorkerEntry>,
      waiters: 0,
      abort,
      hiveId: placement.hive.id,
      deviceId: placement.device.id,
      needBytes: placement.needBytes,
    };
    this.#pending.set(key, entry);
    entry.promise = this.#doSpawn(model, placement, o, signal).finally(() => {
      if (this.#pending.get(key) === entry) this.#pending.delete(key);
    });
    entry.promise.catch(() => {}); // the waiters see the error; without waiters it is only logged
    return entry;
  }

  async #doSpawn(
    model: string,
    placement: ReturnType<typeof choosePlacement>,
    o: SpawnOptions,
    signal: AbortSignal,
  ): Promise<WorkerEntry> {
    const narrate = o.narrate ?? silent;
    const { hive, device, needBytes } = placement;
    const type = o.workerType ?? "llm";
    narrate(
      "queen",
      `spawning ${type} worker for ${model} on hive ${hive.id} (${device.id}; needs about ${formatBytes(needBytes)}, ${formatBytes(device.memory_free)} free)`,
    );
    const t0 = performance.now();
    const report = await this.hives.spawnWorker(
      hive,
      {
        worker_type: type,
        model,
        device: device.id,
        ctx_size: o.ctxSize,
        parallel: o.parallel,
        threads: o.threads,
        keep_alive_ms: Number.isFinite(o.keepAliveMs) ? o.keepAliveMs : null,
      },
      signal,
    );
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    narrate(`hive ${hive.id}`, `worker ${report.worker_id} ready: model loaded in ${seconds} s`);
    this.options.log.info(
      { worker_id: report.worker_id, hive_id: hive.id, model, device: device.id, seconds: Number(seconds) },
      "worker spawned",
    );
    return this.registry.addSpawnedWorker(hive.id, report, o.keepAliveMs);
  }

  /** Stops workers that have been idle longer than their keep-alive. */
  async sweepIdle(now = Date.now()): Promise<void> {
    for (const w of this.registry.workers.values()) {
      if (w.stopping || w.inFlight > 0 || !Number.isFinite(w.keepAliveMs)) continue;
      if (now - w.lastActivity < w.keepAliveMs) continue;
      const hive = this.registry.hives.get(w.hiveId);
      if (!hive?.url || hive.state !== "live") continue;
      await this.stopWorker(
        w,
        `idle for ${Math.round((now - w.lastActivity) / 1000)} s (keep-alive ${Math.round(w.keepAliveMs / 1000)} s)`,
      );
    }
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
      this.registry.removeWorker(w.id, reason);
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
