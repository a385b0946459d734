import { execFileSync } from "node:child_process";
import { DaemonMetrics } from "@rbee/server-kit";
import { describe, expect, it } from "vitest";

describe("DaemonMetrics", () => {
  it("serves the HTTP metrics and, from the first scrape on, the process metrics", async () => {
    const m = new DaemonMetrics("rbee_test");
    m.httpRequests.inc({ route: "/x", method: "GET", status: "200" });
    const { contentType, body } = await m.render();
    expect(contentType).toMatch(/^text\/plain/);
    expect(body).toMatch(/^rbee_test_http_requests_total\{route="\/x",method="GET",status="200"\} 1$/m);
    expect(body).toMatch(/^rbee_test_process_cpu_seconds_total \d/m);
    expect(body).toMatch(/^rbee_test_process_resident_memory_bytes \d/m);
    expect(body).toMatch(/^# TYPE rbee_test_nodejs_eventloop_lag_seconds gauge$/m);
    // a second scrape does not register them again (prom-client would throw on a duplicate name)
    expect((await m.render()).body).toMatch(/^rbee_test_process_cpu_seconds_total \d/m);
  });

  it("a daemon's start loads no more of prom-client than its metric classes: the process metrics come later", () => {
    // a fresh process: which CommonJS files did making the metrics load?
    const script = `
      import { createRequire } from "node:module";
      const { DaemonMetrics } = await import("@rbee/server-kit");
      new DaemonMetrics("rbee_test");
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify({
        otel: loaded.filter((f) => f.includes("@opentelemetry")).length,
        defaults: loaded.some((f) => f.endsWith("prom-client/lib/defaultMetrics.js")),
        counter: loaded.some((f) => f.endsWith("prom-client/lib/counter.js")),
      }));
      process.exit(0);`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: new URL("..", import.meta.url),
      encoding: "utf8",
    });
    expect(JSON.parse(out)).toEqual({ otel: 0, defaults: false, counter: true });
  });
});
