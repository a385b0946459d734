import { PROTOCOL_VERSION } from "@rbee/contract";
import { type StartedWorker, startLlmWorker, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeQueen } from "./helpers/fake-queen.js";
import { startTestHive, type TestHive } from "./helpers/test-hive.js";

describe("hive: adopting workers it did not start", () => {
  let queen: FakeQueen;
  let t: TestHive;
  let stray: StartedWorker | undefined;

  beforeAll(async () => {
    queen = await FakeQueen.start();
    t = await startTestHive({ queenUrl: queen.url });
  });
  afterAll(async () => {
    await stray?.child.stop(2000);
    await t?.close();
    await queen?.close();
  });

  it("a running worker that heartbeats to the hive is adopted, reported to the queen, and stopped on DELETE", async () => {
    // a worker that outlived its hive looks like this: it knows the hive's URL and the cluster token
    stray = await startLlmWorker(
      [
        "--worker-id",
        "llm-stray",
        "--model-id",
        "stories260k",
        "--heartbeat-url",
        t.hive.url,
        "--heartbeat-interval",
        "0.3",
      ],
      { env: { RBEE_CLUSTER_TOKEN: t.hive.token } },
    );
    const adopted = await waitFor(
      () => t.hive.workers().find((w) => w.worker_id === "llm-stray" && w.status === "Ready"),
      10_000,
      "the worker to be adopted",
    );
    expect(adopted).toMatchObject({
      pid: stray.child.pid,
      port: stray.port,
      model: "stories260k",
      worker_type: "llm",
      adopted: true,
      url: `http://127.0.0.1:${stray.port}`,
    });
    await queen.waitForWorker("llm-stray", (w) => w.pid === stray?.child.pid);
    expect((await t.api.get("/metrics")).text).toMatch(/^rbee_hive_workers_adopted_total 1$/m);

    const stopped = await t.api.delete("/v1/workers/llm-stray");
    expect(stopped.status, stopped.text).toBe(200);
    expect(stopped.body.status).toBe("Stopped");
    expect(stopped.body.last_exit.reason).toBe("stopped by request (shut down on request)");
    expect(await stray.child.waitForExit(10_000)).toEqual({ code: 0, signal: null });
    expect(t.hive.workers()).toEqual([]);

    // a late heartbeat under the id of a worker the hive stopped is told to shut down, not adopted again
    const late = await t.api.post("/v1/worker-heartbeat", {
      protocol_version: PROTOCOL_VERSION,
      worker_id: "llm-stray",
      status: "Ready",
      model: "stories260k",
      device: "cpu",
      vram_used: 0,
      vram_total: 1,
      requests_total: 0,
      tokens_generated: 0,
      uptime_seconds: 5,
      last_request_at: null,
      port: stray.port,
    });
    expect(late.body).toEqual({
      ack: true,
      commands: [{ type: "shutdown", reason: "this hive stopped worker 'llm-stray'" }],
    });
    expect(t.hive.workers()).toEqual([]);
  });

  it("an adopted worker whose process ends is reported as Failed (its exit code is unknown), not restarted", async () => {
    const w = await startLlmWorker(
      ["--worker-id", "llm-doomed", "--heartbeat-url", t.hive.url, "--heartbeat-interval", "0.3"],
      { env: { RBEE_CLUSTER_TOKEN: t.hive.token } },
    );
    await waitFor(() => t.hive.workers().find((r) => r.worker_id === "llm-doomed" && r.status === "Ready"), 10_000);
    w.child.kill("SIGKILL");
    await w.child.waitForExit(5000);
    const failed = await waitFor(
      () => t.hive.workers().find((r) => r.worker_id === "llm-doomed" && r.status === "Failed"),
      10_000,
      "the adopted worker to be Failed",
    );
    expect(failed.last_exit?.reason).toMatch(/process is gone/);
    expect(failed.restarts).toBe(0);
    expect((await t.api.delete("/v1/workers/llm-doomed")).status).toBe(200);
  });
});
