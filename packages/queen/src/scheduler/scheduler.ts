import {
  InsufficientMemoryError,
  type PlacementPolicy,
  type WorkerCapability,
  type WorkerTypeDescriptor,
  WorkerUnavailableError,
  workerConfigFor,
} from "@rbee/contract";
import { type ClusterRegistry, type WorkerEntry, workerCapabilities } from "../registry/cluster-registry.js";
import { ClusterChanges } from "./cluster-changes.js";
import { Eviction } from "./eviction.js";
import { Failover } from "./failover.js";
import type { HiveClient } from "./hive-client.js";
import { Leases } from "./leases.js";
import { requireLiveHive } from "./live-hives.js";
import { checkModality } from "./modality.js";
import { ModelResolver, type Resolved } from "./model-resolver.js";
import { PendingSpawns } from "./pending-spawns.js";
import { ReplicaKeeper } from "./replica-keeper.js";
import { RequestQueue } from "./request-queue.js";
import type {
  AcquireOptions,
  Lease,
  Narrate,
  ResolveOptions,
  SchedulerOptions,
  SchedulerStats,
  SpawnOptions,
} from "./scheduler-types.js";
import { SpawnBackoff } from "./spawn-backoff.js";
import { SpawnCoordinator } from "./spawn-coordinator.js";
import { WorkerGroups } from "./worker-groups.js";
import { WorkerStops } from "./worker-stops.js";
import { WorkerTypeChoice } from "./worker-type-choice.js";

export type {
  AcquireOptions,
  Lease,
  Narrate,
  ResolveOptions,
  SchedulerOptions,
  SchedulerStats,
  SpawnOptions,
} from "./scheduler-types.js";

/**
 * Decides where requests go (queen = smart, hives and workers = dumb). This class only wires the
 * modules that decide, one job each (docs/scheduling.md has the map), and is what the rest of the
 * queen calls:
 * 1. a ready worker for the model (leases.ts);
 * 2. none: requests wait in a bounded queue per model for one worker started for them all
 *    (request-queue.ts), placed by memory and policy (spawn-coordinator.ts, placement.ts) once the
 *    model is resolved (model-resolver.ts);
 * 3. nothing fits: room is made by stopping other models' workers started for requests
 *    (eviction.ts, worker-stops.ts), else the model is split over devices (worker-groups.ts);
 * 4. still nothing: an error naming what the model needs and the largest free device.
 * Minimums (replica-keeper.ts), lost and returning hives (failover.ts) and idle workers
 * (worker-stops.ts) are kept by the sweeps the queen runs.
 */
export class Scheduler {
  /** Counts for the queen's metrics. */
  readonly stats: SchedulerStats = { evictions: 0, affinityHits: 0, replacements: 0, suspectedHives: 0 };
  /** Models split over several devices (worker-groups.ts). */
  readonly groups: WorkerGroups;
  readonly #changes = new ClusterChanges();
  readonly #types: WorkerTypeChoice;
  readonly #pending: PendingSpawns;
  readonly #resolver: ModelResolver;
  readonly #leases: Leases;
  readonly #stops: WorkerStops;
  readonly #spawns: SpawnCoordinator;
  readonly #keeper: ReplicaKeeper;
  readonly #failover: Failover;
  readonly #queue: RequestQueue;

  constructor(
    private readonly registry: ClusterRegistry,
    hives: HiveClient,
    private readonly options: SchedulerOptions,
  ) {
    const { log, replicas } = options;
    const changes = this.#changes;
    this.#types = new WorkerTypeChoice(registry, options);
    this.#pending = new PendingSpawns(registry);
    this.#resolver = new ModelResolver(registry, hives, this.#types, this.#pending, options);
    this.#leases = new Leases(registry, changes, this.stats);
    this.groups = new WorkerGroups(registry, hives, {
      log,
      load: this.#pending.load(""),
      holders: (model) => registry.findModel(model).map((h) => ({ hive: h.hive, facts: h.model })),
      failInFlight: (workerId, error) => this.#leases.failInFlight(workerId, error),
      changed: () => changes.changed(),
    });
    this.#stops = new WorkerStops(registry, hives, this.groups, changes, {
      log,
      replicas,
      waiting: (model) => this.#queue.waitingFor(model),
      countReplicas: (model) => this.#keeper.count(model),
    });
    const backoff = new SpawnBackoff();
    const eviction = new Eviction(registry, this.#pending, this.#stops, changes, replicas, this.stats);
    this.#spawns = new SpawnCoordinator(
      registry,
      hives,
      this.#types,
      this.#pending,
      backoff,
      eviction,
      changes,
      options,
    );
    this.#keeper = new ReplicaKeeper(registry, this.#pending, this.#spawns, this.#types, this.stats, options);
    this.#failover = new Failover(
      registry,
      hives,
      this.#leases,
      this.#pending,
      this.#spawns,
      this.#keeper,
      this.#stops,
      this.stats,
      options,
    );
    this.#queue = new RequestQueue(registry, this.#leases, this.#pending, this.#spawns, backoff, this.groups, changes, {
      ...options,
      checkHive: (hiveId) => this.#failover.checkHive(hiveId),
    });
    registry.subscribe((e) => {
      if (e.type !== "worker_added") changes.changed();
    });
  }

  /** Requests waiting for a worker of some model to come up. */
  get waiting(): number {
    return this.#queue.total;
  }

  /** Finds or makes a worker for `modelRef` and takes a slot on it. */
  async acquire(modelRef: string, o: AcquireOptions): Promise<Lease> {
    const capability = o.capability ?? "text-generation";
    const ready = this.#leases.pick(modelRef, o.exclude, o.prefer, capability);
    if (ready) return this.#leases.lease(ready, ready.report.model);
    checkModality(this.registry, this.options.replicas, modelRef, capability);
    // a worker of the model its hive is restarting (it crashed) is waited for as the type it is, so
    // that one which loads no model (echo, a package's) is not looked for in the catalogs
    const type = this.workerTypeFor(modelRef, o.workerType ?? this.#restartingType(modelRef, capability), capability);
    // a type that loads nothing (the echo example) serves the name it is given: no catalog has it
    const { model, hiveModels } =
      type.artifact === "none"
        ? { model: modelRef.toLowerCase(), hiveModels: [] }
        : await this.resolveModel(modelRef, { ...o, workerType: type.id });
    const again = this.#leases.pick(model, o.exclude, o.prefer, capability);
    if (again) return this.#leases.lease(again, model);
    const worker = await this.#queue.waitForWorker(model, hiveModels, { ...o, capability }, type);
    return this.#leases.lease(worker, model);
  }

  /** The type of a worker of the model that its hive is (re)starting and that serves the capability. */
  #restartingType(model: string, capability: WorkerCapability): string | undefined {
    for (const w of this.registry.startingWorkers(model)) {
      const id = w.report.worker_type;
      if (!workerCapabilities(w).includes(capability)) continue;
      if (this.findType(id) !== undefined) return id;
    }
    return undefined;
  }

  /** The worker type a new worker for a model is started as (worker-type-choice.ts). */
  workerTypeFor(model: string, asked: string | undefined, capability?: WorkerCapability): WorkerTypeDescriptor {
    return this.#types.forModel(model, asked, capability);
  }

  /** A built-in worker type, or one a live hive installed from a package. */
  findType(id: string): WorkerTypeDescriptor | undefined {
    return this.#types.find(id);
  }

  /** Worker types installed on at least one live hive (or known to rbee, before any hive reported). */
  installedTypes(): string[] {
    return this.#types.installed();
  }

  /** Turns what a client asked for into a model id the hives know, fetching it if needed (model-resolver.ts). */
  resolveModel(ref: string, o: ResolveOptions = {}): Promise<Resolved> {
    return this.#resolver.resolve(ref, o);
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
            admin: o.admin,
          });
    if (o.hive !== undefined) requireLiveHive(this.registry, o.hive);
    if (hiveModels.length === 0 && type.artifact !== "none") {
      throw new WorkerUnavailableError(
        `no hive has ${model} in its catalog to start a worker from; see \`rbee model ls\``,
      );
    }
    if (o.devices !== undefined) return [await this.groups.spawn(model, o)];
    if (o.replicas !== undefined) return this.#keeper.setMinimum(model, o.replicas, o, given.workerType);
    try {
      return [await this.#spawns.launch(this.#pending.uniqueKey(model), model, o).promise];
    } catch (err) {
      // fits on no single device: split it over several, if their sum fits (else the group's refusal, with figures)
      if (!(err instanceof InsufficientMemoryError) || o.hive !== undefined || o.device !== undefined) throw err;
      if (!this.groups.splittable()) throw err;
      return [await this.groups.spawn(model, o)];
    }
  }

  /** Places workers for models below their minimum, and heals worker groups; the queen calls it every sweep. */
  reconcile(now = Date.now()): void {
    this.groups.sweep(now);
    this.#keeper.reconcile(now);
  }

  /** The models kept at a minimum of workers, and how many count towards it now (GET /v1/cluster). */
  minimums(): Array<{ model: string; replicas: number; running: number; policy?: PlacementPolicy }> {
    return this.#keeper.minimums();
  }

  /** Memory promised to workers being spawned on a device, which its free figure does not show yet. */
  promised(hiveId: string, deviceId: string): number {
    return this.#pending.promised(hiveId, deviceId);
  }

  /** A worker refused a connection: finds out whether its whole hive is gone (failover.ts). */
  checkHive(hiveId: string): Promise<void> {
    return this.#failover.checkHive(hiveId);
  }

  /** Stops workers that have been idle longer than their keep-alive (not below a model's minimum). */
  sweepIdle(now = Date.now()): Promise<void> {
    return this.#stops.sweepIdle(now);
  }

  /** Drains a worker (it finishes its requests, takes no new one), then stops it; aborting takes it back. */
  drainWorker(w: WorkerEntry, reason: string, signal: AbortSignal, narrate?: Narrate): Promise<void> {
    return this.#stops.drainWorker(w, reason, signal, narrate);
  }

  stopWorker(w: WorkerEntry, reason: string): Promise<void> {
    return this.#stops.stopWorker(w, reason);
  }
}
