import { WorkerUnavailableError } from "@rbee/contract";
import { type Logger, UnreachableError } from "@rbee/server-kit";
import type { ClusterRegistry, WorkerEntry } from "../registry/cluster-registry.js";
import type { ReplicaStore } from "../store/replica-store.js";
import type { HiveClient } from "./hive-client.js";
import type { Leases } from "./leases.js";
import type { PendingSpawns } from "./pending-spawns.js";
import type { ReplicaKeeper } from "./replica-keeper.js";
import { norm, type SchedulerStats } from "./scheduler-types.js";
import type { SpawnCoordinator } from "./spawn-coordinator.js";
import type { WorkerStops } from "./worker-stops.js";

/** How long a hive has to answer /health when one of its workers refused a connection. */
const PROBE_TIMEOUT_MS = 1000;

/**
 * Failover: what happens when a hive goes away or comes back. A hive lost (or found unreachable)
 * fails its requests in flight at once, gives up spawns under way there, and has its models placed
 * anew where no worker serves them any more; a hive that comes back has the replacements beyond
 * each model's need given up. It also suspects a hive whose worker refused a connection. It does
 * not keep minimums (replica-keeper.ts does, from the same counts).
 */
export class Failover {
  constructor(
    private readonly registry: ClusterRegistry,
    private readonly hives: HiveClient,
    private readonly leases: Leases,
    private readonly pending: PendingSpawns,
    private readonly spawns: SpawnCoordinator,
    private readonly keeper: ReplicaKeeper,
    private readonly stops: WorkerStops,
    private readonly stats: SchedulerStats,
    private readonly o: { replicas: ReplicaStore; log: Logger },
  ) {
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
    });
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

  /**
   * A hive went away: its requests in flight fail now with a clear error (rather than when TCP gives
   * up), and models that now have no worker anywhere are placed anew where they fit.
   */
  #hiveDown(hiveId: string, why: string): void {
    const lost = [...this.registry.workers.values()].filter((w) => w.hiveId === hiveId);
    for (const w of lost) {
      this.leases.failInFlight(
        w.id,
        new WorkerUnavailableError(`${why} while worker ${w.id} was answering; retry the request`, {
          worker_id: w.id,
          hive_id: hiveId,
        }),
      );
    }
    // spawns under way there will not finish: their requests try another hive
    for (const p of this.pending.values()) {
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
    if (this.o.replicas.get(model) !== undefined || this.keeper.count(model) > 0) return;
    const log = this.o.log;
    if (this.registry.findModel(model).length === 0) {
      log.warn({ model, hive_id: hiveId }, "cannot place the lost hive's model again: no live hive has it");
      return;
    }
    log.info({ model, hive_id: hiveId, worker_id: w.id }, "placing the lost hive's model again");
    this.stats.replacements++;
    const failed = (err: unknown) =>
      log.warn({ model, err: (err as Error).message }, "could not place the lost hive's model again");
    try {
      const pending = this.spawns.launch(this.pending.uniqueKey(model), model, {
        keepAliveMs: w.keepAliveMs,
        replacement: true,
      });
      pending.promise.catch(failed);
    } catch (err) {
      failed(err);
    }
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
      let extra = this.keeper.count(model) - Math.max(1, this.o.replicas.get(model)?.replicas ?? 0);
      const why = `hive ${hiveId} came back with a worker of ${model}`;
      for (const p of this.pending.values()) {
        if (extra <= 0) break;
        if (!p.replacement || p.waiters > 0 || norm(p.model) !== m || p.hiveId === hiveId) continue;
        p.abort.abort(new Error(why));
        extra--;
      }
      for (const w of [...this.registry.workers.values()]) {
        if (extra <= 0) break;
        if (!this.pending.isReplacement(w.id) || norm(w.report.model) !== m || w.hiveId === hiveId) continue;
        if (w.stopping || w.draining) continue;
        extra--;
        this.pending.forgetReplacement(w.id);
        this.o.log.info({ worker_id: w.id, model, hive_id: hiveId }, "stopping a replacement: its hive came back");
        this.stops
          .drainWorker(w, why, new AbortController().signal)
          .catch((err: unknown) =>
            this.o.log.warn({ worker_id: w.id, err: (err as Error).message }, "could not stop a replacement"),
          );
      }
    }
  }
}
