import { RbeeError } from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import type { ClusterRegistry, WorkerEntry } from "../registry/cluster-registry.js";
import type { ReplicaStore } from "../store/replica-store.js";
import type { ClusterChanges } from "./cluster-changes.js";
import type { HiveClient } from "./hive-client.js";
import { type Narrate, norm, silent } from "./scheduler-types.js";
import type { WorkerGroups } from "./worker-groups.js";

export interface WorkerStopsOptions {
  log: Logger;
  replicas: ReplicaStore;
  /** Requests waiting for a worker of the model (request-queue.ts). */
  waiting(model: string): number;
  /** Workers that count towards the model's minimum (replica-keeper.ts). */
  countReplicas(model: string): number;
}

/**
 * Stopping workers: at once (by request, or as eviction's last step), drained first (finishing
 * their requests), and idle ones whose keep-alive ran out (never below a model's minimum, never
 * while requests wait for the model). It does not choose which workers make room (eviction.ts).
 */
export class WorkerStops {
  constructor(
    private readonly registry: ClusterRegistry,
    private readonly hives: HiveClient,
    private readonly groups: WorkerGroups,
    private readonly changes: ClusterChanges,
    private readonly o: WorkerStopsOptions,
  ) {}

  /** Stops workers that have been idle longer than their keep-alive (not below a model's minimum). */
  async sweepIdle(now = Date.now()): Promise<void> {
    for (const w of this.registry.workers.values()) {
      if (w.stopping || w.inFlight > 0 || !Number.isFinite(w.keepAliveMs)) continue;
      if (now - w.lastActivity < w.keepAliveMs) continue;
      // still loading, or requests wait to take it (a spawn's keep-alive counts once it has served them)
      if (w.report.status === "Starting" || this.o.waiting(norm(w.report.model)) > 0) continue;
      const hive = this.registry.hives.get(w.hiveId);
      if (!hive?.url || hive.state !== "live") continue;
      const minimum = this.o.replicas.get(w.report.model)?.replicas ?? 0;
      if (minimum > 0 && this.o.countReplicas(w.report.model) <= minimum) continue;
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
    this.registry.setDraining(w, true, reason);
    try {
      if (w.inFlight > 0) narrate("queen", `draining ${w.id}: waiting for its ${w.inFlight} request(s) in flight`);
      while (w.inFlight > 0 && this.registry.workers.has(w.id)) await this.changes.next(signal);
    } catch (err) {
      this.registry.setDraining(w, false, "the drain was cancelled");
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
    this.registry.setStopping(w, true, reason);
    this.o.log.info({ worker_id: w.id, hive_id: hive.id, reason }, "stopping worker");
    try {
      await this.hives.stopWorker(hive, w.id);
      this.registry.removeWorker(w.id, reason, Date.now(), true);
      // a group's coordinator stopped by request: its shards go too
      if (w.report.group?.role === "coordinator") await this.groups.forget(w.id);
    } catch (err) {
      this.registry.setStopping(w, false, `the stop failed: ${(err as Error).message}`);
      this.o.log.warn({ worker_id: w.id, err: (err as Error).message }, "could not stop worker");
      throw err;
    }
  }
}
