import { Counter, DaemonMetrics, Gauge } from "@rbee/server-kit";
import type { ClusterRegistry } from "./registry/cluster-registry.js";
import type { Scheduler } from "./scheduler/scheduler.js";

/** The queen's Prometheus metrics, on top of the process and HTTP metrics every daemon has. */
export class QueenMetrics extends DaemonMetrics {
  readonly jobs: Counter<"operation" | "outcome">;

  constructor(registry: ClusterRegistry, scheduler: () => Scheduler) {
    super("rbee_queen");
    const registers = [this.registry];
    this.jobs = new Counter({
      name: "rbee_queen_jobs_total",
      help: "Jobs finished, by operation and outcome (done, error, cancelled)",
      labelNames: ["operation", "outcome"],
      registers,
    });
    new Gauge({
      name: "rbee_queen_hives",
      help: "Hives by state (live, stale, lost)",
      labelNames: ["state"],
      registers,
      collect() {
        this.reset();
        for (const h of registry.hives.values()) this.inc({ state: h.state });
      },
    });
    new Gauge({
      name: "rbee_queen_workers",
      help: "Workers by status",
      labelNames: ["status"],
      registers,
      collect() {
        this.reset();
        for (const w of registry.workers.values()) this.inc({ status: w.report.status });
      },
    });
    new Gauge({
      name: "rbee_queen_in_flight",
      help: "Requests the queen has routed to workers and not seen finish",
      registers,
      collect() {
        let n = 0;
        for (const w of registry.workers.values()) n += w.inFlight;
        this.set(n);
      },
    });
    const counted: Array<[string, string, keyof Scheduler["stats"]]> = [
      ["rbee_queen_evictions_total", "Workers stopped to make room for another model", "evictions"],
      [
        "rbee_queen_affinity_hits_total",
        "Requests sent to the worker holding their conversation's prefix",
        "affinityHits",
      ],
      [
        "rbee_queen_replacements_total",
        "Workers placed anew for a lost hive's model or a model's minimum",
        "replacements",
      ],
      ["rbee_queen_suspected_hives_total", "Hives found unreachable before their heartbeats aged", "suspectedHives"],
    ];
    for (const [name, help, key] of counted) {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(scheduler().stats[key]);
        },
      });
    }
    new Gauge({
      name: "rbee_queen_waiting",
      help: "Requests waiting for a worker to come up",
      registers,
      collect() {
        this.set(scheduler().waiting);
      },
    });
  }
}
