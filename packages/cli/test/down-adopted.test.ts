import type { ClusterWorker } from "@rbee/contract";
import { getJson, requireStoriesModel, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pidAlive, pidFromFile, type Sandbox, sandbox, sandboxProcesses } from "./helpers.js";

/**
 * Issue 15, defect 10: `rbee down` returned while a worker that a restarted hive had taken back
 * (re-adopted) still ran. `rbee down` must return only once that worker is gone too.
 */
describe("rbee down and a re-adopted worker (issue 15: defect 10)", () => {
  let s: Sandbox;
  beforeAll(async () => {
    s = await sandbox();
  });
  afterAll(async () => {
    await s.dispose();
  }, 90_000);

  it("a hive killed and started again takes its worker back; rbee down then stops that worker before it returns", async () => {
    const up = await s.rbee(["up"]);
    expect(up.code, up.stderr).toBe(0);
    const spawn = await s.rbee(["worker", "spawn", "-m", requireStoriesModel(), "--parallel", "1"]);
    expect(spawn.code, spawn.stderr).toBe(0);
    const workers = async (): Promise<ClusterWorker[]> => (await getJson(`${s.queenUrl}/v1/cluster`)).body.workers;
    const [worker] = await workers();
    const pid = worker?.pid as number;
    expect(pidAlive(pid)).toBe(true);

    process.kill(pidFromFile(s.cacheDir, "hive") as number, "SIGKILL");
    const again = await s.rbee(["hive", "start"]);
    expect(again.code, again.stderr).toBe(0);
    await waitFor(
      async () => (await workers()).find((w) => w.pid === pid && w.status === "Ready"),
      30_000,
      "the new hive to take the worker back",
    );

    const down = await s.rbee(["down"], { timeoutMs: 90_000 });
    expect(down.code, down.stderr).toBe(0);
    expect(pidAlive(pid), `worker ${pid} still runs after rbee down`).toBe(false);
    expect(sandboxProcesses(s.cacheDir).filter((p) => p !== process.pid)).toEqual([]);
  });

  it("a hive too stuck to stop its re-adopted worker is killed, and rbee down stops the worker itself", async () => {
    expect((await s.rbee(["up"])).code).toBe(0);
    const spawn = await s.rbee(["worker", "spawn", "-m", requireStoriesModel(), "--parallel", "1"]);
    expect(spawn.code, spawn.stderr).toBe(0);
    const workers = async (): Promise<ClusterWorker[]> => (await getJson(`${s.queenUrl}/v1/cluster`)).body.workers;
    const pid = (await workers())[0]?.pid as number;
    process.kill(pidFromFile(s.cacheDir, "hive") as number, "SIGKILL");
    expect((await s.rbee(["hive", "start"])).code).toBe(0);
    await waitFor(async () => (await workers()).find((w) => w.pid === pid && w.status === "Ready"), 30_000);

    process.kill(pidFromFile(s.cacheDir, "hive") as number, "SIGSTOP");
    const down = await s.rbee(["down"], { timeoutMs: 90_000, env: { RBEE_HIVE_STOP_GRACE_MS: "2000" } });
    expect(down.code, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/hive stopped \(pid \d+, killed after 2 s\)/);
    expect(down.stdout).toMatch(/worker \S+ stopped \(pid \d+, SIGTERM\): its hive had not stopped it/);
    expect(pidAlive(pid), `worker ${pid} still runs after rbee down`).toBe(false);
  });
});
