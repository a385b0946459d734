import { rename } from "node:fs/promises";
import { join } from "node:path";
import { postJson, STORIES_MODEL } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeQueen } from "./helpers/fake-queen.js";
import { copyStoriesModel, isPidAlive, startTestHive, type TestHive, writeCorruptGguf } from "./helpers/test-hive.js";

const INTERVAL_MS = 400;

describe("hive: crash supervision of real llm workers", () => {
  let queen: FakeQueen;
  let t: TestHive;

  const spawn = async (workerId: string, model = "stories260k") => {
    const r = await t.api.post("/v1/workers", { model, worker_id: workerId });
    expect(r.status, r.text).toBe(201);
    return r.body as { pid: number; port: number; url: string };
  };

  beforeAll(async () => {
    queen = await FakeQueen.start();
    t = await startTestHive({
      queenUrl: queen.url,
      heartbeatIntervalMs: INTERVAL_MS,
      restart: { maxRestarts: 2, backoffMs: 100, maxBackoffMs: 400, windowMs: 60_000 },
    });
    expect((await t.api.post("/v1/models", { ref: STORIES_MODEL })).status).toBe(200);
  });
  afterAll(async () => {
    await t?.close();
    await queen?.close();
  });

  it("a worker killed with SIGKILL is restarted (new pid); the hive heartbeat reports the crash and the restart", async () => {
    const first = await spawn("llm-crash");
    const since = queen.beats.length;
    process.kill(first.pid, "SIGKILL");

    // the crash is reported before the restart is done ...
    const crashed = await queen.waitForWorker("llm-crash", (w) => w.status === "Starting" && w.last_exit !== null, {
      since,
    });
    expect(crashed.worker.last_exit).toMatchObject({ code: null, signal: "SIGKILL", reason: "killed by SIGKILL" });
    // ... and then the restarted worker, with the restart counted
    const { worker } = await queen.waitForWorker(
      "llm-crash",
      (w) => w.status === "Ready" && w.restarts === 1 && w.pid !== null && w.pid !== first.pid,
      { since, timeoutMs: 20_000 },
    );
    expect(worker.last_exit?.reason).toBe("killed by SIGKILL");
    expect(isPidAlive(worker.pid as number)).toBe(true);
    expect(worker.port).toBe(first.port); // the port was free again, so it is kept

    const infer = await postJson(`${worker.url}/v1/infer`, { prompt: "Once", max_tokens: 4 }, { token: t.hive.token });
    expect(infer.status, infer.text).toBe(200);
    const metrics = (await t.api.get("/metrics")).text;
    expect(metrics).toMatch(/^rbee_hive_worker_crashes_total 1$/m);
    expect(metrics).toMatch(/^rbee_hive_worker_restarts_total 1$/m);
    expect((await t.api.delete("/v1/workers/llm-crash")).status).toBe(200);
  });

  it("a worker that keeps crashing turns Failed after maxRestarts and stays listed with its last exit", async () => {
    // a copy of the model that breaks once the worker runs: every restart then dies while loading
    const path = await copyStoriesModel(join(t.tmp, "flaky.gguf"));
    const model = await t.api.post("/v1/models", { ref: path });
    const first = await spawn("llm-flaky", model.body.id);
    await rename(await writeCorruptGguf(join(t.tmp, "corrupt.tmp")), path);
    const since = queen.beats.length;
    process.kill(first.pid, "SIGKILL");

    const { worker } = await queen.waitForWorker("llm-flaky", (w) => w.status === "Failed", {
      since,
      timeoutMs: 30_000,
    });
    expect(worker).toMatchObject({ restarts: 2, pid: null });
    expect(worker.last_exit).toMatchObject({ code: 1, signal: null, reason: "exited with code 1" });
    const listed = (await t.api.get("/v1/workers")).body.workers.find(
      (w: { worker_id: string }) => w.worker_id === "llm-flaky",
    );
    expect(listed).toMatchObject({ status: "Failed", restarts: 2 });
    const stopped = await t.api.delete("/v1/workers/llm-flaky");
    expect(stopped.body).toMatchObject({ status: "Stopped", last_exit: { code: 1 } });
    expect(t.hive.workers().some((w) => w.worker_id === "llm-flaky")).toBe(false);
  });

  it("a worker whose heartbeats stop is stale after 3 intervals, then killed after 6 and restarted", async () => {
    const first = await spawn("llm-frozen");
    const since = queen.beats.length;
    process.kill(first.pid, "SIGSTOP");
    try {
      const stale = await queen.waitForWorker("llm-frozen", (w) => w.stale === true, { since });
      expect(stale.worker.heartbeat_age_ms).toBeGreaterThan(3 * INTERVAL_MS);
      const { worker } = await queen.waitForWorker(
        "llm-frozen",
        (w) => w.status === "Ready" && w.restarts === 1 && w.pid !== first.pid && w.stale === false,
        { since, timeoutMs: 20_000 },
      );
      expect(worker.last_exit?.reason).toMatch(
        /^no heartbeat for \d+\.\d s; killed by the hive \(killed by SIGKILL\)$/,
      );
      expect(isPidAlive(first.pid)).toBe(false);
      expect((await t.api.get("/metrics")).text).toMatch(/^rbee_hive_workers_lost_total 1$/m);
    } finally {
      if (isPidAlive(first.pid)) process.kill(first.pid, "SIGKILL");
    }
  });
});
