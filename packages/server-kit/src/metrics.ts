import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

export { Counter, Gauge, Histogram, Registry } from "prom-client";

/** A Prometheus registry with the process metrics and the HTTP request metrics every daemon serves. */
export class DaemonMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<"route" | "method" | "status">;
  readonly httpDuration: Histogram<"route" | "method">;

  constructor(readonly prefix: string) {
    // the event-loop delay monitor wakes the process at its precision; every 10 ms (the default) costs
    // an idle daemon 1 % of a core on these VMs, every 100 ms a tenth of that
    collectDefaultMetrics({ register: this.registry, prefix: `${prefix}_`, eventLoopMonitoringPrecision: 100 });
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
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
