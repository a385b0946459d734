import type { WorkerCapability, WorkerTypeDescriptor } from "@rbee/contract";
import type { ClusterRegistry, WorkerEntry } from "../registry/cluster-registry.js";
import type { DeviceLoad } from "./placement.js";
import { norm } from "./scheduler-types.js";

/** A worker being placed and started; requests for its model may wait on it. */
export interface PendingSpawn {
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

/**
 * The spawns under way, and the workers that were started as replacements: the bookkeeping that
 * placement, the replica keeper and failover read. It decides nothing; spawn-coordinator.ts adds
 * and removes spawns.
 */
export class PendingSpawns {
  readonly #byKey = new Map<string, PendingSpawn>();
  /** Workers started in place of a lost hive's or for a minimum: the first to go when that hive comes back. */
  readonly #replacements = new Set<string>();
  #seq = 0;

  constructor(private readonly registry: ClusterRegistry) {
    registry.subscribe((e) => {
      if (e.type === "worker_removed") this.#replacements.delete(e.worker_id);
    });
  }

  /** A key of its own for a spawn no request joins by key (by hand, for a minimum, for a lost hive). */
  uniqueKey(model: string): string {
    return `${norm(model)}#${++this.#seq}`;
  }

  get size(): number {
    return this.#byKey.size;
  }

  get(key: string): PendingSpawn | undefined {
    return this.#byKey.get(key);
  }

  values(): IterableIterator<PendingSpawn> {
    return this.#byKey.values();
  }

  add(key: string, p: PendingSpawn): void {
    this.#byKey.set(key, p);
  }

  /** Forgets the spawn under `key`, if it is still `p`. */
  remove(key: string, p: PendingSpawn): void {
    if (this.#byKey.get(key) === p) this.#byKey.delete(key);
  }

  /** A spawn under way of `model` whose type serves `capability`; the one keyed by the model first. */
  serving(model: string, capability: WorkerCapability): PendingSpawn | undefined {
    const key = norm(model);
    const serves = (p: PendingSpawn) => norm(p.model) === key && p.workerType.capabilities.includes(capability);
    return [this.#byKey.get(key), ...this.#byKey.values()].find((p) => p !== undefined && serves(p));
  }

  /** Spawns under way of `model` (on `hiveId`, when given). */
  count(model: string, hiveId?: string): number {
    const m = norm(model);
    let n = 0;
    for (const p of this.#byKey.values()) if (norm(p.model) === m && (hiveId === undefined || p.hiveId === hiveId)) n++;
    return n;
  }

  /** Memory promised to workers being spawned on a device, which its free figure does not show yet. */
  promised(hiveId: string, deviceId: string): number {
    let n = 0;
    for (const p of this.#byKey.values()) if (p.hiveId === hiveId && p.deviceId === deviceId) n += p.needBytes;
    return n;
  }

  /** Marks a spawn as a replacement; the worker it starts is remembered as one. */
  markReplacement(p: PendingSpawn): void {
    p.replacement = true;
    p.promise.then(
      (w) => this.#replacements.add(w.id),
      () => {},
    );
  }

  isReplacement(workerId: string): boolean {
    return this.#replacements.has(workerId);
  }

  forgetReplacement(workerId: string): void {
    this.#replacements.delete(workerId);
  }

  /**
   * What placement must know of the cluster beyond the hives' heartbeats, for a worker of `model`:
   * memory reserved by rbee's workers and promised to spawns, and the model's workers per hive.
   */
  load(model: string): DeviceLoad {
    const m = norm(model);
    return {
      reserved: (h, d) => this.registry.reserved(h, d),
      promised: (h, d) => this.promised(h, d),
      replicas: (h) => {
        let n = 0;
        for (const w of this.registry.workers.values())
          if (w.hiveId === h && norm(w.report.model) === m && !w.stopping && !w.draining) n++;
        return n + this.count(model, h);
      },
    };
  }
}
