import type { Device, WorkerTypeDescriptor } from "@rbee/contract";
import type { ClusterRegistry, WorkerEntry } from "../registry/cluster-registry.js";
import type { ReplicaStore } from "../store/replica-store.js";
import type { ClusterChanges } from "./cluster-changes.js";
import type { PendingSpawns } from "./pending-spawns.js";
import { deviceOptions, type Placement, type PlacementCandidate } from "./placement.js";
import { type Narrate, norm, type SchedulerStats } from "./scheduler-types.js";
import type { WorkerStops } from "./worker-stops.js";

/**
 * Eviction: when a model a request needs fits nowhere, which workers of other models to stop to
 * make room, and stopping them once their requests are done. Only workers started for requests
 * go (never ones spawned by hand with no keep-alive, never ones a minimum keeps). It looks at the
 * same devices placement does (placement.ts: deviceOptions); it does not place the new worker.
 */
export class Eviction {
  constructor(
    private readonly registry: ClusterRegistry,
    private readonly pending: PendingSpawns,
    private readonly stops: WorkerStops,
    private readonly changes: ClusterChanges,
    private readonly replicas: ReplicaStore,
    private readonly stats: SchedulerStats,
  ) {}

  /**
   * Where a model fits once workers of other models go: on one device, the fewest workers that were
   * started for requests (not pinned by hand or by a minimum), those already draining and idle ones
   * first, then the least recently used. Undefined when no device can make room.
   */
  findRoom(
    model: string,
    candidates: PlacementCandidate[],
    o: { device?: string | undefined },
    type: WorkerTypeDescriptor,
    need: (device: Device) => number,
  ): { placement: Placement; victims: WorkerEntry[] } | undefined {
    const m = norm(model);
    const options = deviceOptions(candidates, this.pending.load(model), { device: o.device, need, workerType: type });
    let best: { placement: Placement; victims: WorkerEntry[]; busy: number } | undefined;
    for (const { hive, device, hasModel, needBytes, free: freeNow } of options) {
      const evictable = [...this.registry.workers.values()]
        .filter(
          (w) =>
            w.hiveId === hive.id &&
            w.report.device === device.id &&
            norm(w.report.model) !== m &&
            !w.stopping &&
            Number.isFinite(w.keepAliveMs) &&
            this.replicas.get(w.report.model) === undefined,
        )
        .sort(
          (a, b) =>
            Number(b.draining) - Number(a.draining) ||
            Number(a.inFlight > 0) - Number(b.inFlight > 0) ||
            a.lastActivity - b.lastActivity,
        );
      let free = freeNow;
      const victims: WorkerEntry[] = [];
      for (const w of evictable) {
        if (free >= needBytes) break;
        victims.push(w);
        free += w.memoryBytes;
      }
      if (free < needBytes || victims.length === 0) continue;
      const busy = victims.filter((w) => w.inFlight > 0).length;
      if (!best || busy < best.busy || (busy === best.busy && victims.length < best.victims.length)) {
        best = { placement: { hive, device, needBytes, hasModel, workerType: type.id }, victims, busy };
      }
    }
    return best;
  }

  /** Lets the victims finish their requests (taking no new ones), then stops them. Aborting takes them back. */
  async evict(
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
    const why = `making room for ${model}`;
    for (const w of victims) this.registry.setDraining(w, true, why);
    try {
      while (victims.some((w) => w.inFlight > 0 && this.registry.workers.has(w.id))) await this.changes.next(signal);
    } catch (err) {
      for (const w of victims) this.registry.setDraining(w, false, `${why} was given up`);
      throw err;
    }
    for (const w of victims) {
      if (!this.registry.workers.has(w.id) || w.stopping) continue;
      await this.stops.stopWorker(w, why);
      this.stats.evictions++;
    }
  }
}
