import { Counter, DaemonMetrics, Gauge, Histogram } from "@rbee/server-kit";

/** Prometheus metrics of one worker, on top of the process and HTTP metrics every daemon has. */
export class WorkerMetrics extends DaemonMetrics {
  readonly requests: Counter<"outcome">;
  readonly tokensGenerated: Counter;
  readonly promptTokens: Counter;
  readonly inFlight: Gauge;
  readonly queueDepth: Gauge;
  readonly requestDuration: Histogram;
  readonly timeToFirstToken: Histogram;
  readonly throughput: Gauge;
  readonly status: Gauge<"status">;

  constructor() {
    super("rbee_worker");
    const registers = [this.registry];
    this.requests = new Counter({
      name: "rbee_worker_requests_total",
      help: "Inference requests finished, by outcome (stop, length, cancelled, error, rejected)",
      labelNames: ["outcome"],
      registers,
    });
    this.tokensGenerated = new Counter({
      name: "rbee_worker_tokens_generated_total",
      help: "Tokens generated",
      registers,
    });
    this.promptTokens = new Counter({
      name: "rbee_worker_prompt_tokens_total",
      help: "Prompt tokens processed (cached ones included)",
      registers,
    });
    this.inFlight = new Gauge({ name: "rbee_worker_in_flight", help: "Requests being generated now", registers });
    this.queueDepth = new Gauge({ name: "rbee_worker_queue_depth", help: "Requests waiting for a slot", registers });
    this.requestDuration = new Histogram({
      name: "rbee_worker_request_duration_seconds",
      help: "Time from accepting an inference request to its last token",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: "rbee_worker_time_to_first_token_seconds",
      help: "Time from accepting an inference request to its first generated token, queueing included",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.throughput = new Gauge({
      name: "rbee_worker_throughput_tokens_per_second",
      help: "Tokens generated per second over the last 5 seconds",
      registers,
    });
    this.status = new Gauge({
      name: "rbee_worker_status",
      help: "1 for the worker's current status, 0 for the others",
      labelNames: ["status"],
      registers,
    });
  }
}
