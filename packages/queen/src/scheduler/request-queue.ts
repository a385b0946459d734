import {
  type HiveModel,
  InsufficientMemoryError,
  QueueFullError,
  type WorkerCapability,
  type WorkerTypeDescriptor,
  WorkerUnavailableError,
} from "@rbee/contract";
import { UnreachableError } from "@rbee/server-kit";
import {
  type ClusterRegistry,
  type HiveEntry,
  type WorkerEntry,
  workerCapabilities,
} from "../registry/cluster-registry.js";
import { abortable, type ClusterChanges } from "./cluster-changes.js";
import type { Leases } from "./leases.js";
import { unusableCopies } from "./model-resolver.js";
import type { PendingSpawns } from "./pending-spawns.js";
import { type AcquireOptions, norm } from "./scheduler-types.js";
import type { SpawnBackoff } from "./spawn-backoff.js";
import type { SpawnCoordinator } from "./spawn-coordinator.js";
import type { WorkerGroups } from "./worker-groups.js";

/**
 * Requests that found no ready worker: they wait, in a bounded queue per model, for the worker
 * that will serve them. Merging spawns is decided here: a request joins a spawn under way for its
 * model, a worker group that heals, or a worker its hive is restarting, and starts a worker only
 * when none of those will serve it (one spawn per model, however many requests wait). It does not
 * choose the device (spawn-coordinator.ts, placement.ts) nor the ready worker (leases.ts).
 */
export class RequestQueue {
  readonly #waiting = new Map<string, number>();

  constructor(
    private readonly registry: ClusterRegistry,
    private readonly leases: Leases,
    private readonly pending: PendingSpawns,
    private readonly spawns: SpawnCoordinator,
    private readonly backoff: SpawnBackoff,
    private readonly groups: WorkerGroups,
    private readonly changes: ClusterChanges,
    private readonly o: {
      maxWaitingPerModel: number;
      defaultKeepAliveMs: number;
      /** Finds out whether a hive that did not answer is gone (failover.ts). */
      checkHive(hiveId: string): Promise<void>;
    },
  ) {}

  /** Requests waiting for a worker of some model to come up. */
  get total(): number {
    let n = 0;
    for (const v of this.#waiting.values()) n += v;
    return n;
  }

  /** Requests waiting for a worker of `model`. */
  waitingFor(model: string): number {
    return this.#waiting.get(norm(model)) ?? 0;
  }

  /** Waits for a worker of `model` that serves the request's capability: joins one coming up, or starts one. */
  async waitForWorker(
    model: string,
    hiveModels: Array<{ hive: HiveEntry; model: HiveModel }>,
    o: AcquireOptions & { capability: WorkerCapability },
    type: WorkerTypeDescriptor,
  ): Promise<WorkerEntry> {
    const key = norm(model);
    const waiting = this.#waiting.get(key) ?? 0;
    if (waiting >= this.o.maxWaitingPerModel) {
      throw new QueueFullError(waiting, this.o.maxWaitingPerModel, 5);
    }
    this.#waiting.set(key, waiting + 1);
    let toldWaiting = false;
    let toldRestarting = false;
    try {
      for (let attempt = 1; ; attempt++) {
        // a spawn under way for the model (for requests, a minimum, or a lost hive's model) serves
        // these requests too, if its type serves what they need
        let pending = this.pending.serving(model, o.capability);
        // a worker group of the model heals (or its coordinator restarts): wait for it, in this same bounded queue
        const group = pending ? undefined : this.groups.waitFor(model, o.signal);
        if (group) {
          o.narrate?.("queen", `waiting for the worker group of ${model} to serve again`);
          return await group;
        }
        if (
          !pending &&
          type.artifact !== "none" &&
          hiveModels.length === 0 &&
          this.registry.findModel(model).length === 0
        ) {
          // a worker given up on is the reason when no catalog holds a broken copy (an echo
          // worker's model is in none), else one more fact after it
          const copies = unusableCopies(this.registry, model);
          const failed = failedWorkers(this.registry, model);
          const why =
            failed !== undefined && copies === ""
              ? `: ${failed}`
              : `, and no hive has it in its catalog to start another${copies}${failed ? `; ${failed}` : ""}`;
          throw new WorkerUnavailableError(`no worker for ${model} can take requests now${why}; see \`rbee status\``);
        }
        // a worker of the model its hive is (re)starting: wait for it rather than start a second one
        // (not one whose start just failed there, which a heartbeat sent meanwhile still shows Starting)
        const restarting = pending
          ? undefined
          : this.registry
              .startingWorkers(model)
              .find((w) => workerCapabilities(w).includes(o.capability) && !this.backoff.holds(model, w.hiveId));
        if (restarting) {
          if (!toldRestarting)
            o.narrate?.("queen", `waiting for worker ${restarting.id}, which hive ${restarting.hiveId} is restarting`);
          toldRestarting = true;
          await this.changes.next(o.signal);
          // once restarted it is a new process: a request that found the old one gone takes it too
          const ready = this.leases.pick(model, without(o.exclude, restarting.id), o.prefer, o.capability);
          if (ready) return ready;
          attempt--;
          continue;
        }
        if (pending) o.narrate?.("queen", `waiting for the ${model} worker that is starting`);
        else {
          try {
            pending = this.spawns.launch(`${key}@${type.id}`, model, {
              keepAliveMs: o.keepAliveMs ?? this.o.defaultKeepAliveMs,
              admin: o.admin,
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
                keepAliveMs: this.o.defaultKeepAliveMs,
                narrate: o.narrate,
              });
            // another model holds the memory and is being swapped: wait for the device, then try again
            if (!(err instanceof InsufficientMemoryError) || !this.#swapping()) throw err;
            if (!toldWaiting) o.narrate?.("queen", "waiting for memory: another model is being swapped in");
            toldWaiting = true;
            await this.changes.next(o.signal);
            const ready = this.leases.pick(model, o.exclude, o.prefer, o.capability);
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
          await this.o.checkHive(pending.hiveId);
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
    if (this.pending.size > 0) return true;
    for (const w of this.registry.workers.values()) if (w.draining) return true;
    return false;
  }
}

/**
 * The workers of a model that their hives gave up restarting (Failed), in words, with what clears
 * them; undefined when there are none. Whatever they load: an echo worker's model is in no catalog.
 */
function failedWorkers(registry: ClusterRegistry, model: string): string | undefined {
  const m = norm(model);
  const failed = [...registry.workers.values()].filter(
    (w) => norm(w.report.model) === m && w.report.status === "Failed",
  );
  if (failed.length === 0) return undefined;
  const each = failed.map((w) => {
    const exit = w.report.last_exit?.reason;
    return `worker ${w.id} (${w.report.worker_type}) on hive ${w.hiveId} failed${exit ? ` (${exit})` : ""} and its hive gave up restarting it after ${w.report.restarts} restart${w.report.restarts === 1 ? "" : "s"}`;
  });
  const first = failed[0]?.id ?? "";
  return `${each.join("; ")}; \`rbee worker stop ${first}\` clears ${failed.length === 1 ? "it" : "one"}, and \`rbee worker spawn\` starts another`;
}

/** The set without `id` (itself when it does not hold it). */
function without(set: ReadonlySet<string> | undefined, id: string): ReadonlySet<string> | undefined {
  if (set === undefined || !set.has(id)) return set;
  const rest = new Set(set);
  rest.delete(id);
  return rest;
}
