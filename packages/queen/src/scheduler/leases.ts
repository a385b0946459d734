import type { WorkerCapability } from "@rbee/contract";
import type { ClusterRegistry, WorkerEntry } from "../registry/cluster-registry.js";
import type { ClusterChanges } from "./cluster-changes.js";
import type { Lease, SchedulerStats } from "./scheduler-types.js";

/**
 * Leasing and routing among running workers: which ready worker takes a request (the one holding
 * the conversation's prefix while it has room, else the fewest requests in flight per slot, the one
 * idle longest among equals), and the request's hold on it until it ends. It does not start
 * workers (request-queue.ts decides to wait or start one).
 */
export class Leases {
  readonly #byWorker = new Map<string, Set<AbortController>>();

  constructor(
    private readonly registry: ClusterRegistry,
    private readonly changes: ClusterChanges,
    private readonly stats: SchedulerStats,
  ) {}

  /** The worker a request for `model` goes to now, if one can take it. */
  pick(
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

  /** Takes a slot on the worker for one request. */
  lease(worker: WorkerEntry, model: string): Lease {
    this.registry.requestStarted(worker);
    const abort = new AbortController();
    let held = this.#byWorker.get(worker.id);
    if (!held) {
      held = new Set();
      this.#byWorker.set(worker.id, held);
    }
    const leases = held;
    leases.add(abort);
    let released = false;
    return {
      worker,
      model,
      signal: abort.signal,
      release: (keepAliveMs) => {
        if (released) return;
        released = true;
        this.registry.requestEnded(worker, keepAliveMs);
        leases.delete(abort);
        if (leases.size === 0) this.#byWorker.delete(worker.id);
        if (worker.inFlight === 0) this.changes.changed();
      },
    };
  }

  /** Fails the requests in flight on a worker with this error (their clients hear at once). */
  failInFlight(workerId: string, error: Error): void {
    for (const lease of this.#byWorker.get(workerId) ?? []) lease.abort(error);
  }
}
