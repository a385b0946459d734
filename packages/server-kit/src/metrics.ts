import { createRequire } from "node:module";
import type * as Prom from "prom-client";

// prom-client's own entry loads its default process metrics at once, and with them
// @opentelemetry/api: ~85 modules and ~50 ms at the start of every daemon and worker, where a cold
// `rbee infer` starts four of them on a CPU they share. The metric classes come from their own
// files instead, and the default metrics load a little after the start (or at the first scrape).
const require = createRequire(import.meta.url);
export const Registry: typeof Prom.Registry = require("prom-client/lib/registry");
export type Registry = Prom.Registry;
export const Counter: typeof Prom.Counter = require("prom-client/lib/counter");
export type Counter<T extends string = string> = Prom.Counter<T>;
export const Gauge: typeof Prom.Gauge = require("prom-client/lib/gauge");
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export const Histogram: typeof Prom.Histogram = require("prom-client/lib/histogram");
export type Histogram<T extends string = string> = Prom.Histogram<T>;

/** How long after a daemon's metrics are made its process metrics (CPU, memory, event loop) are added. */
const DEFAULT_METRICS_DELAY_MS = 3000;

/** A Prometheus registry with the process metrics and the HTTP request metrics every daemon serves. */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<"route" | "method" | "status">;
  readonly httpDuration: Histogram<"route" | "method">;
  #defaults: NodeJS.Timeout | "added";

  constructor(readonly prefix: string) {
    this.#defaults = setTimeout(() => this.#addDefaultMetrics(), DEFAULT_METRICS_DELAY_MS);
    this.#defaults.unref();
    this.httpRequests = new Counter({
      name: `${prefix}_http_requests_total`,
      help: "HTTP requests answered, by route, method and status code",
      labelNames: ["route", "method", "status"],
      registers: [this.registry],
    });
    this.httpDuration = new Histogram({
      name: `${prefix}_http_request_duration_seconds`,
      help: "Time to answer an HTTP request (for streams: until the stream ended)",
      labelNames: ["route", "method"],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
      registers: [this.registry],
    });
  }

  /** The text exposition format, for `GET /metrics`. */
  async render(): Promise<{ contentType: string; body: string }> {
    this.#addDefaultMetrics();
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** prom-client's process metrics (`<prefix>_process_cpu_seconds_total`, memory, event loop), once. */
  #addDefaultMetrics(): void {
    if (this.#defaults === "added") return;
    clearTimeout(this.#defaults);
    this.#defaults = "added";
    const collect: typeof Prom.collectDefaultMetrics = require("prom-client/lib/defaultMetrics");
    // the event-loop delay monitor wakes the process at its precision; every 10 ms (the default) costs
    // an idle daemon 1 % of a core on these VMs, every 100 ms a tenth of that
    collect({ register: this.registry, prefix: `${this.prefix}_`, eventLoopMonitoringPrecision: 100 });
  }
}
