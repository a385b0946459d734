import { type Queen, startQueen } from "@rbee/queen";
import { freePort } from "@rbee/server-kit";
import {
  type ChildHandle,
  postJson,
  quietLog,
  requireStoriesModel,
  runJob,
  startRbee,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import { afterEach, describe, expect, it } from "vitest";

/**
 * A machine dies: its hive and its workers are killed with SIGKILL (real processes, started with the
 * real CLI), while a client keeps sending requests through the queen. Real llm workers on stories260K.
 */

const HEARTBEAT_MS = 300;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

interface Machine {
  id: string;
  hive: ChildHandle;
}

async function startTestQueen(configDir: string): Promise<Queen> {
  const queen = await startQueen({
    log: quietLog("queen"),
    port: await freePort(),
    configDir,
    cacheDir: tempRbeeDirs("queen").cacheDir,
    heartbeatIntervalMs: HEARTBEAT_MS,
    sweepIntervalMs: 200,
  });
  cleanups.push(() => queen.close());
  return queen;
}

/** A hive in its own process, with its own cache, joined to the queen; the model registered on it. */
async function startMachine(queen: Queen, configDir: string, id: string): Promise<Machine> {
  const dirs = tempRbeeDirs(id);
  const hive = startRbee(["hive", "start", "--foreground", "--port", "0", "--hive-id", id], {
    env: {
      RBEE_CONFIG_DIR: configDir,
      RBEE_CACHE_DIR: dirs.cacheDir,
      RBEE_QUEEN_URL: queen.url,
      RBEE_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
      RBEE_WORKER_PORT_START: String(20_000 + Math.floor(Math.random() * 30_000)),
      RBEE_LOG_LEVEL: "warn",
    },
  });
  cleanups.push(() => hive.stop(5000));
  await waitFor(() => (queen.registry.hives.get(id)?.state === "live" ? true : undefined), 30_000);
  const job = await runJob(queen.url, { type: "download_model", model: requireStoriesModel(), hive: id });
  expect(job.error?.message).toBeUndefined();
  return { id, hive };
}

/** The machine dies: its hive and every worker on it are killed at once. */
function kill(queen: Queen, machine: Machine): void {
  for (const w of queen.registry.workers.values()) {
    if (w.hiveId === machine.id && w.report.pid) process.kill(w.report.pid, "SIGKILL");
  }
  machine.hive.kill("SIGKILL");
}

const workersOn = (queen: Queen, hiveId: string) =>
  [...queen.registry.workers.values()].filter((w) => w.hiveId === hiveId && queen.registry.isRoutable(w));

describe("failover when a machine dies (real hive processes, killed with SIGKILL)", () => {
  it("with a replica elsewhere, clients see at most their in-flight requests fail, then success; the minimum is restored", async () => {
    const dirs = tempRbeeDirs("failover");
    const queen = await startTestQueen(dirs.configDir);
    const a = await startMachine(queen, dirs.configDir, "machine-a");
    await startMachine(queen, dirs.configDir, "machine-b");
    const spawned = await runJob(queen.url, { type: "spawn_worker", model: "stories260k", replicas: 2 });
    expect(spawned.error?.message).toBeUndefined();
    expect(spawned.result.workers.map((w: { hive_id: string }) => w.hive_id).sort()).toEqual([
      "machine-a",
      "machine-b",
    ]);

    const CLIENTS = 3;
    const outcomes: Array<{ status: number; at: number; message?: string }> = [];
    let killedAt = 0;
    let stop = false;
    const client = async () => {
      while (!stop) {
        const r = await postJson(`${queen.url}/v1/completions`, {
          model: "stories260k",
          prompt: "Once upon a time",
          max_tokens: 24,
        });
        outcomes.push({ status: r.status, at: Date.now(), message: r.body?.error?.message });
      }
    };
    const clients = Array.from({ length: CLIENTS }, client);
    await waitFor(() => (outcomes.length >= 6 ? true : undefined), 30_000);
    killedAt = Date.now();
    kill(queen, a);
    await waitFor(
      () => (outcomes.filter((o) => o.at > killedAt && o.status === 200).length >= 20 ? true : undefined),
      60_000,
    );
    stop = true;
    await Promise.all(clients);

    const after = outcomes.filter((o) => o.at >= killedAt);
    const failed = after.filter((o) => o.status !== 200);
    // only requests that were on the dead machine's worker at that moment may fail, each with a clear 503
    expect(failed.length).toBeLessThanOrEqual(CLIENTS);
    for (const f of failed) {
      expect(f.status).toBe(503);
      expect(f.message).toMatch(/worker .* (stopped in the middle|cannot be reached|was lost|unreachable)/);
    }
    const firstOk = after.find((o) => o.status === 200);
    expect(firstOk).toBeDefined();
    // the minimum of two is kept: a second worker is placed on the machine that is left
    await waitFor(() => (workersOn(queen, "machine-b").length === 2 ? true : undefined), 60_000);
    expect(queen.registry.hives.get("machine-a")?.state).not.toBe("live");
  });

  it("the only machine serving a model dies: the model is placed again on another hive, without a request", async () => {
    const dirs = tempRbeeDirs("replace");
    const queen = await startTestQueen(dirs.configDir);
    const a = await startMachine(queen, dirs.configDir, "machine-a");
    await startMachine(queen, dirs.configDir, "machine-b");
    const spawned = await runJob(queen.url, { type: "spawn_worker", model: "stories260k", hive: "machine-a" });
    expect(spawned.result.worker.hive_id).toBe("machine-a");
    expect(workersOn(queen, "machine-b")).toHaveLength(0);

    kill(queen, a);
    // lost after 6 missed heartbeats; then the queen places the model where it is still available
    const replacement = await waitFor(() => workersOn(queen, "machine-b")[0], 60_000);
    expect(replacement.report.model).toBe("stories260k");
    const r = await postJson(`${queen.url}/v1/completions`, {
      model: "stories260k",
      prompt: "Once upon a time",
      max_tokens: 12,
    });
    expect(r.status).toBe(200);
    expect(queen.registry.hives.get("machine-a")?.state).toBe("lost");
  });
});
