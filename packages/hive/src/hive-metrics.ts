import { type HiveWorkerReport, WorkerStatus } from "@rbee/contract";
import { Counter, DaemonMetrics, Gauge } from "@rbee/server-kit";

/** Prometheus metrics of a hive, on top of the process and HTTP metrics every daemon has. */
export class HiveMetrics extends DaemonMetrics {
  readonly workers: Gauge<"status">;
  readonly spawns: Counter<"outcome">;
  readonly crashes: Counter;
  readonly restarts: Counter;
  readonly lost: Counter;
  readonly adopted: Counter;
  readonly workerHeartbeats: Counter;
  readonly queenHeartbeats: Counter<"outcome">;

  constructor() {
    super("rbee_hive");
    const registers = [this.registry];
    this.workers = new Gauge({
      name: "rbee_hive_workers",
      help: "Workers of this hive, by the status the hive reports",
      labelNames: ["status"],
      registers,
    });
    this.spawns = new Counter({
      name: "rbee_hive_worker_spawns_total",
      help: "Worker spawns asked for, by outcome (ready, failed, cancelled)",
      labelNames: ["outcome"],
      registers,
    });
    this.crashes = new Counter({
      name: "rbee_hive_worker_crashes_total",
      help: "Worker processes that ended without being asked to (restart attempts that died included)",
      registers,
    });
    this.restarts = new Counter({ name: "rbee_hive_worker_restarts_total", help: "Worker restarts", registers });
    this.lost = new Counter({
      name: "rbee_hive_workers_lost_total",
      help: "Workers killed because their heartbeats stopped for 6 intervals",
      registers,
    });
    this.adopted = new Counter({
      name: "rbee_hive_workers_adopted_total",
      help: "Workers this hive did not start that it took over from their heartbeats",
      registers,
    });
    this.workerHeartbeats = new Counter({
      name: "rbee_hive_worker_heartbeats_total",
      help: "Heartbeats received from workers",
      registers,
    });
    this.queenHeartbeats = new Counter({
      name: "rbee_hive_queen_heartbeats_total",
      help: "Heartbeats sent to the queen, by outcome (ok, failed)",
      labelNames: ["outcome"],
      registers,
    });
  }

  /** Sets the per-status worker gauge from the current reports (before each scrape). */
  countWorkers(reports: readonly HiveWorkerReport[]): void {
    for (const status of WorkerStatus.options) {
      this.workers.set({ status }, reports.filter((r) => r.status === status).length);
    }
  }
}
