import type { PlacementPolicy } from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import type { ClusterRegistry, WorkerEntry } from "../registry/cluster-registry.js";
import type { ReplicaSpec, ReplicaStore } from "../store/replica-store.js";
import type { PendingSpawns } from "./pending-spawns.js";
import { type Narrate, norm, type SchedulerStats, type SpawnOptions, silent } from "./scheduler-types.js";
import type { SpawnCoordinator } from "./spawn-coordinator.js";
import type { WorkerTypeChoice } from "./worker-type-choice.js";

/** A model whose minimum could not be restored is tried again after this, doubling up to a minute. */
const REPLICA_RETRY_MS = 2000;

/**
 * Replica minimums (`rbee worker spawn --replicas N`): keeps them in replicas.json, counts the
 * workers that count towards each, and places the missing ones every sweep, with a backoff while
 * nothing fits. It does not stop workers beyond a minimum (failover.ts trims replacements) and
 * does not choose devices (spawn-coordinator.ts).
 */
export class ReplicaKeeper {
  readonly #retry = new Map<string, { failures: number; at: number }>();
  readonly #startedAt = Date.now();

  constructor(
    private readonly registry: ClusterRegistry,
    private readonly pending: PendingSpawns,
    private readonly spawns: SpawnCoordinator,
    private readonly types: WorkerTypeChoice,
    private readonly stats: SchedulerStats,
    private readonly o: { replicas: ReplicaStore; settleMs: number; log: Logger },
  ) {}

  /**
   * Sets a model's minimum (0 forgets it) and spawns the workers missing from it; resolves with the
   * model's workers once they run.
   */
  async setMinimum(
    model: string,
    replicas: number,
    o: SpawnOptions & { workerType: string },
    askedType: string | undefined,
  ): Promise<WorkerEntry[]> {
    const narrate: Narrate = o.narrate ?? silent;
    if (replicas === 0) {
      this.o.replicas.set(model, undefined);
      narrate("queen", `${model} has no minimum of workers any more; its workers stay until stopped`);
      return this.#serving(model);
    }
    this.o.replicas.set(model, {
      replicas,
      policy: o.policy,
      hive: o.hive,
      device: o.device,
      ctx_size: o.ctxSize,
      parallel: o.parallel,
      threads: o.threads,
      worker_type: askedType,
      ...(o.config === undefined ? {} : { config: o.config }),
    });
    const have = this.count(model);
    narrate(
      "queen",
      have >= replicas
        ? `${model} keeps at least ${replicas} workers; ${have} already run`
        : `${model} keeps at least ${replicas} workers: ${have} run, spawning ${replicas - have}`,
    );
    const spawns: Promise<WorkerEntry>[] = [];
    for (let i = have; i < replicas; i++) {
      spawns.push(this.spawns.launch(this.pending.uniqueKey(model), model, o).promise);
    }
    await Promise.all(spawns);
    return this.#serving(model);
  }

  /** Places workers for models below their minimum; the queen calls it every sweep. */
  reconcile(now = Date.now()): void {
    if (now - this.#startedAt < this.o.settleMs) return;
    for (const [model, spec] of this.o.replicas.entries()) {
      const retry = this.#retry.get(model);
      if (retry && now < retry.at) continue;
      const missing = spec.replicas - this.count(model);
      if (missing <= 0) continue;
      if (this.registry.findModel(model).length === 0 && this.types.find(spec.worker_type ?? "")?.artifact !== "none") {
        this.#failed(model, new Error("no live hive has it in its catalog"), now);
        continue;
      }
      this.o.log.info({ model, missing, replicas: spec.replicas }, "placing workers to keep the minimum");
      for (let i = 0; i < missing; i++) this.#launch(model, spec);
      this.stats.replacements += missing;
    }
  }

  /** The models kept at a minimum of workers, and how many count towards it now (GET /v1/cluster). */
  minimums(): Array<{ model: string; replicas: number; running: number; policy?: PlacementPolicy }> {
    return this.o.replicas.entries().map(([model, spec]) => ({
      model,
      replicas: spec.replicas,
      running: this.count(model),
      policy: spec.policy,
    }));
  }

  /** Workers of a model that count towards its minimum: serving or starting on a live hive; and spawns under way. */
  count(model: string): number {
    let n = this.registry.routableWorkers(model).length;
    n += this.registry.startingWorkers(model).filter((w) => !w.draining).length;
    return n + this.pending.count(model);
  }

  #launch(model: string, spec: ReplicaSpec): void {
    try {
      const pending = this.spawns.launch(this.pending.uniqueKey(model), model, {
        hive: spec.hive,
        device: spec.device,
        ctxSize: spec.ctx_size,
        parallel: spec.parallel,
        threads: spec.threads,
        policy: spec.policy,
        workerType: spec.worker_type,
        config: spec.config,
        keepAliveMs: Number.POSITIVE_INFINITY,
        replacement: true,
      });
      pending.promise.then(
        () => this.#retry.delete(norm(model)),
        (err: unknown) => this.#failed(model, err, Date.now()),
      );
    } catch (err) {
      this.#failed(model, err, Date.now());
    }
  }

  #failed(model: string, err: unknown, now: number): void {
    const key = norm(model);
    const failures = (this.#retry.get(key)?.failures ?? 0) + 1;
    const delay = Math.min(60_000, REPLICA_RETRY_MS * 2 ** (failures - 1));
    this.#retry.set(key, { failures, at: now + delay });
    this.o.log.warn(
      { model, failures, retry_in_ms: delay, err: (err as Error).message },
      "could not place a worker to keep the model's minimum",
    );
  }

  #serving(model: string): WorkerEntry[] {
    const m = norm(model);
    return [...this.registry.workers.values()].filter((w) => norm(w.report.model) === m && !w.stopping);
  }
}
