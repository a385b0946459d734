import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ErrorBody, HiveWorkerReport } from "@rbee/contract";
import { postJson, STORIES_GREEDY_PREFIX, STORIES_MODEL, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeQueen } from "./helpers/fake-queen.js";
import { isPidAlive, startTestHive, type TestHive, writeCorruptGguf } from "./helpers/test-hive.js";

const PROMPT = "Once upon a time";

describe("hive: spawning and stopping real llm workers on stories260K", () => {
  let queen: FakeQueen;
  let t: TestHive;

  beforeAll(async () => {
    queen = await FakeQueen.start();
    t = await startTestHive({ queenUrl: queen.url });
    expect((await t.api.post("/v1/models", { ref: STORIES_MODEL })).status).toBe(200);
  });
  afterAll(async () => {
    await t?.close();
    await queen?.close();
  });

  it("spawns a worker that serves the model with the cluster token, reports it to the queen, and stops it", async () => {
    const spawned = await t.api.post("/v1/workers", { model: "stories260k", worker_id: "llm-e2e", parallel: 2 });
    expect(spawned.status, spawned.text).toBe(201);
    const report = HiveWorkerReport.parse(spawned.body);
    expect(report).toMatchObject({
      worker_id: "llm-e2e",
      worker_type: "llm",
      model: "stories260k",
      device: "cpu",
      status: "Ready",
      restarts: 0,
      last_exit: null,
    });
    const pid = report.pid as number;
    expect(isPidAlive(pid)).toBe(true);
    expect(report.url).toBe(`http://127.0.0.1:${report.port}`);

    // the worker requires the cluster token, and serves the catalog id
    const refused = await postJson(`${report.url}/v1/infer`, { prompt: PROMPT, max_tokens: 4 });
    expect(refused.status).toBe(401);
    const infer = await postJson(
      `${report.url}/v1/infer`,
      { prompt: PROMPT, max_tokens: 12, temperature: 0 },
      { token: t.hive.token },
    );
    expect(infer.status, infer.text).toBe(200);
    expect(infer.body.text.startsWith(STORIES_GREEDY_PREFIX), infer.body.text).toBe(true);
    expect(infer.body.model).toBe("stories260k");

    // the queen hears of it, with the worker's own heartbeat, the catalog and the cluster token
    const seen = await queen.waitForWorker("llm-e2e", (w) => w.status === "Ready" && w.heartbeat?.pid === pid);
    expect(seen.heartbeat).toMatchObject({ hive_id: "test-hive", url: t.hive.url });
    expect(seen.heartbeat.models.map((m) => m.id)).toEqual(["stories260k"]);
    expect(seen.worker.heartbeat_age_ms).toBeGreaterThanOrEqual(0);
    expect(queen.beats.every((b) => b.authorization === `Bearer ${t.hive.token}`)).toBe(true);
    expect(queen.invalid).toEqual([]);

    // the worker's output goes to its log file, readable over the API
    const logs = await t.api.get("/v1/workers/llm-e2e/logs?tail=1000");
    expect(logs.status).toBe(200);
    expect(logs.text).toMatch(/"msg":"worker ready"/);
    expect(logs.text.trim().split("\n").length).toBeGreaterThan(2);
    expect((await t.api.get("/v1/workers/llm-e2e/logs?tail=2")).text.trim().split("\n")).toHaveLength(2);
    const logFile = join(t.cacheDir, "logs", "workers", "llm-e2e.log");
    expect(await readFile(logFile, "utf8")).toContain("hive: starting worker");

    // a second spawn under the same id is refused
    const dup = await t.api.post("/v1/workers", { model: "stories260k", worker_id: "llm-e2e" });
    expect(dup.status).toBe(409);
    expect(ErrorBody.parse(dup.body).error.code).toBe("worker_exists");

    const since = queen.beats.length;
    const stopped = await t.api.delete("/v1/workers/llm-e2e");
    expect(stopped.status, stopped.text).toBe(200);
    expect(HiveWorkerReport.parse(stopped.body)).toMatchObject({
      worker_id: "llm-e2e",
      status: "Stopped",
      pid: null,
      last_exit: { code: 0, signal: null, reason: "stopped by request (exited with code 0)" },
    });
    expect(isPidAlive(pid)).toBe(false);
    expect((await t.api.get("/v1/workers")).body).toEqual({ workers: [], spare_pid: null });
    expect((await t.api.delete("/v1/workers/llm-e2e")).status).toBe(404);
    await queen.waitFor((hb) => hb.workers.length === 0, 10_000, since);
  });

  it("a worker that dies while loading fails the spawn at once, with its exit code and last log lines", async () => {
    const corrupt = await writeCorruptGguf(join(t.tmp, "corrupt.gguf"));
    const model = await t.api.post("/v1/models", { ref: corrupt });
    expect(model.status, model.text).toBe(200);
    // a ready timeout far longer than the test's own: only an early failure lets this test pass
    const r = await t.api.post("/v1/workers", {
      model: model.body.id,
      worker_id: "llm-corrupt",
      ready_timeout_ms: 600_000,
    });
    expect(r.status, r.text).toBe(500);
    const e = ErrorBody.parse(r.body).error;
    expect(e.code).toBe("worker_start_failed");
    expect(e.message).toMatch(/^worker 'llm-corrupt' exited with code 1 while starting; its last log lines:\n/);
    expect(e.message).toContain("rbee worker:");
    expect(e.message).toContain("loading model");
    // it is not kept; its log is
    expect(t.hive.workers()).toEqual([]);
    const logs = await t.api.get("/v1/workers/llm-corrupt/logs");
    expect(logs.status).toBe(200);
    expect(logs.text).toContain("rbee worker:");
  });

  it("a client that disconnects while the worker starts stops that worker", async () => {
    const abort = new AbortController();
    const pending = fetch(`${t.hive.url}/v1/workers`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.hive.token}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "stories260k", worker_id: "llm-cancelled" }),
      signal: abort.signal,
    }).catch((err: unknown) => err);
    const starting = await waitFor(
      () => t.hive.workers().find((w) => w.worker_id === "llm-cancelled" && w.pid !== null && w.status === "Starting"),
      10_000,
      "the worker to be starting",
    );
    abort.abort();
    expect(await pending).toBeInstanceOf(Error);
    await waitFor(() => (t.hive.workers().length === 0 ? true : undefined), 10_000, "the worker to be forgotten");
    await waitFor(() => (isPidAlive(starting.pid as number) ? undefined : true), 10_000, "the worker process to exit");
    const metrics = await t.api.get("/metrics");
    expect(metrics.text).toMatch(/^rbee_hive_worker_spawns_total\{outcome="cancelled"\} 1$/m);
  });

  it("closing the hive stops all its workers gracefully", async () => {
    const other = await startTestHive();
    try {
      await other.api.post("/v1/models", { ref: STORIES_MODEL });
      const [a, b] = await Promise.all([
        other.api.post("/v1/workers", { model: "stories260k", worker_id: "llm-a" }),
        other.api.post("/v1/workers", { model: "stories260k", worker_id: "llm-b" }),
      ]);
      expect([a?.status, b?.status]).toEqual([201, 201]);
      expect(a?.body.port).not.toBe(b?.body.port);
      const pids = [a?.body.pid as number, b?.body.pid as number];
      await other.hive.close();
      expect(pids.map(isPidAlive)).toEqual([false, false]);
      for (const id of ["llm-a", "llm-b"]) {
        const log = await readFile(join(other.cacheDir, "logs", "workers", `${id}.log`), "utf8");
        expect(log).toMatch(/"reason":"received SIGTERM".*"msg":"stopped"/);
      }
    } finally {
      await other.close();
    }
  });
});
