import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Hive, type HiveOptions, startHive } from "@rbee/hive";
import { type Queen, type QueenOptions, startQueen } from "@rbee/queen";
import { getJson, postJson, quietLog, requireStoriesModel, runJob, tempRbeeDirs, waitFor } from "@rbee/testing";
import { afterEach, describe, expect, it } from "vitest";

/**
 * The scheduler's gaps of issue 16, each with a real queen, real hives and real llm workers on
 * stories260K. Heartbeats every second (stale after 3 s), so that "at once" is told apart from
 * "when the hive turned stale".
 */
const HEARTBEAT_MS = 1000;
const LONG = 60_000;

type Dirs = ReturnType<typeof tempRbeeDirs>;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

const portBase = () => 20_000 + Math.floor(Math.random() * 30_000);

async function queenIn(dirs: Dirs, extra: QueenOptions = {}): Promise<Queen> {
  const queen = await startQueen({
    log: quietLog("queen"),
    port: 0,
    configDir: dirs.configDir,
    cacheDir: dirs.cacheDir,
    heartbeatIntervalMs: HEARTBEAT_MS,
    sweepIntervalMs: 200,
    ...extra,
  });
  cleanups.push(() => queen.close());
  return queen;
}

async function hiveIn(queen: Queen, dirs: Dirs, hiveId: string, extra: HiveOptions = {}): Promise<Hive> {
  const hive = await startHive({
    log: quietLog("hive"),
    port: 0,
    queenUrl: queen.url,
    hiveId,
    configDir: dirs.configDir,
    cacheDir: join(dirs.cacheDir, hiveId),
    heartbeatIntervalMs: HEARTBEAT_MS,
    workerOrphanTimeoutMs: 20_000,
    workerPortStart: portBase(),
    env: { ...process.env, RBEE_DEVICES: "[]" },
    ...extra,
  });
  cleanups.push(() => hive.close());
  await waitFor(() => (queen.registry.hives.get(hiveId)?.state === "live" ? true : undefined), LONG);
  return hive;
}

const completion = (queen: Queen, body: Record<string, unknown>) =>
  postJson(`${queen.url}/v1/completions`, { prompt: "Once upon a time", max_tokens: 8, temperature: 0, ...body });

/** Spawns the hive asked for, by outcome. */
async function spawnsAsked(hive: Hive): Promise<number> {
  const counted = await hive.metrics.spawns.get();
  return counted.values.reduce((n, v) => n + v.value, 0);
}

describe("the scheduler's gaps (issue 16), real queen, hives and workers", () => {
  it("a model that fails to load is not spawned again for every request: the next ones get its failure at once", async () => {
    const dirs = tempRbeeDirs("gap-backoff");
    const queen = await queenIn(dirs);
    const hive = await hiveIn(queen, dirs, "hive-a");
    // a GGUF whose header is whole but whose tensors are cut off: it is added, and fails to load
    const path = join(dirs.root, "cut.gguf");
    const whole = await readFile(requireStoriesModel());
    await writeFile(path, whole.subarray(0, Math.floor(whole.length / 2)));

    const first = await completion(queen, { model: path });
    expect(first.status, first.text).toBeGreaterThanOrEqual(500);
    expect(await spawnsAsked(hive)).toBe(1);

    const t0 = Date.now();
    const second = await completion(queen, { model: path });
    const tookMs = Date.now() - t0;
    expect(second.status).toBe(first.status);
    expect(second.body.error.message).toContain(first.body.error.message.slice(0, 40));
    expect(await spawnsAsked(hive)).toBe(1);
    expect(tookMs).toBeLessThan(1000);
  });

  it("a request's keep_alive applies from the spawn it caused (the hive starts the worker with it)", async () => {
    const dirs = tempRbeeDirs("gap-keepalive");
    const queen = await queenIn(dirs);
    const hive = await hiveIn(queen, dirs, "hive-a");
    const r = await completion(queen, { model: requireStoriesModel(), keep_alive: "7m" });
    expect(r.status, r.text).toBe(200);
    const [worker] = hive.workers();
    expect(worker?.keep_alive_ms).toBe(7 * 60_000);
  });

  it("a request waits for a worker its hive is restarting, instead of spawning a second one", async () => {
    const dirs = tempRbeeDirs("gap-restart");
    const queen = await queenIn(dirs);
    const hive = await hiveIn(queen, dirs, "hive-a", {
      restart: { maxRestarts: 5, backoffMs: 1500, maxBackoffMs: 1500, windowMs: 60_000 },
    });
    expect((await completion(queen, { model: requireStoriesModel() })).status).toBe(200);
    const [worker] = hive.workers();
    const id = worker?.worker_id as string;
    process.kill(worker?.pid as number, "SIGKILL");
    await waitFor(
      () => (queen.registry.workers.get(id)?.report.status === "Starting" ? true : undefined),
      LONG,
      "the queen to hear that the hive restarts the worker",
    );
    const again = await completion(queen, { model: "stories260k" });
    expect(again.status, again.text).toBe(200);
    expect(hive.workers().map((w) => [w.worker_id, w.restarts])).toEqual([[id, 1]]);
    expect([...queen.registry.workers.keys()]).toEqual([id]);

    // killed again, and asked before the queen hears of it: the request finds it gone, and waits
    // for the same restart (the worker it could not reach is a new process once restarted)
    await waitFor(
      () => (queen.registry.workers.get(id)?.report.status === "Ready" && hive.workers()[0]?.pid ? true : undefined),
      LONG,
      "the worker to serve again",
    );
    process.kill(hive.workers()[0]?.pid as number, "SIGKILL");
    const third = await completion(queen, { model: "stories260k" });
    expect(third.status, third.text).toBe(200);
    expect(hive.workers().map((w) => [w.worker_id, w.restarts])).toEqual([[id, 2]]);
    expect([...queen.registry.workers.keys()]).toEqual([id]);
  });

  it("a request for a worker that loads no model (echo) waits for its hive to restart it, whether or not the queen has heard of the crash yet", async () => {
    const dirs = tempRbeeDirs("gap-restart-echo");
    const queen = await queenIn(dirs);
    const hive = await hiveIn(queen, dirs, "hive-a", {
      restart: { maxRestarts: 5, backoffMs: 1500, maxBackoffMs: 1500, windowMs: 60_000 },
    });
    const spawned = await runJob(queen.url, { type: "spawn_worker", model: "parrot", worker_type: "echo" });
    expect(spawned.error).toBeUndefined();
    const id = spawned.result.worker.worker_id as string;
    const chat = () =>
      postJson(`${queen.url}/v1/chat/completions`, {
        model: "parrot",
        messages: [{ role: "user", content: "hello there world" }],
        max_tokens: 2,
      });
    const ready = () =>
      waitFor(
        () =>
          hive.workers()[0]?.status === "Ready" && queen.registry.workers.get(id)?.report.status === "Ready"
            ? true
            : undefined,
        LONG,
        "the worker to serve again",
      );
    const kill = () => process.kill(hive.workers()[0]?.pid as number, "SIGKILL");

    // the queen has not heard yet: the request finds the worker gone, and waits for its restart
    kill();
    const first = await chat();
    expect(first.status, first.text).toBe(200);
    expect(first.body.choices[0].message.content).toBe("hello there");
    await ready();

    // the queen has heard (its hive reports it Starting): the request waits for it
    kill();
    await waitFor(
      () => (queen.registry.workers.get(id)?.report.status === "Starting" ? true : undefined),
      LONG,
      "the queen to hear that the hive restarts the worker",
    );
    const second = await chat();
    expect(second.status, second.text).toBe(200);
    expect(second.body.choices[0].message.content).toBe("hello there");

    // the same worker, restarted twice; no other was started for the requests
    expect(hive.workers().map((w) => [w.worker_id, w.restarts])).toEqual([[id, 2]]);
    expect([...queen.registry.workers.keys()]).toEqual([id]);
  });

  it("a worker that loads no model (echo) given up by its hive: a request is told so, not that no catalog has the model", async () => {
    const dirs = tempRbeeDirs("gap-failed-echo");
    const queen = await queenIn(dirs);
    const hive = await hiveIn(queen, dirs, "hive-a", {
      restart: { maxRestarts: 0, backoffMs: 100, maxBackoffMs: 100, windowMs: 60_000 },
    });
    const spawned = await runJob(queen.url, { type: "spawn_worker", model: "parrot", worker_type: "echo" });
    expect(spawned.error).toBeUndefined();
    const id = spawned.result.worker.worker_id as string;
    process.kill(hive.workers()[0]?.pid as number, "SIGKILL");
    await waitFor(
      () => (queen.registry.workers.get(id)?.report.status === "Failed" ? true : undefined),
      LONG,
      "the queen to hear that the hive gave the worker up",
    );
    const r = await postJson(`${queen.url}/v1/chat/completions`, {
      model: "parrot",
      messages: [{ role: "user", content: "hello there world" }],
      max_tokens: 2,
    });
    expect(r.status, r.text).toBe(503);
    expect(r.body.error.code).toBe("worker_unavailable");
    expect(r.body.error.message).toBe(
      `no worker for parrot can take requests now: worker ${id} (echo) on hive hive-a failed (killed by SIGKILL) and its hive gave up restarting it after 0 restarts; \`rbee worker stop ${id}\` clears it, and \`rbee worker spawn\` starts another; see \`rbee status\``,
    );
  });

  it("a hive that stops gracefully says so in its last heartbeat and is gone from routing at once", async () => {
    const dirs = tempRbeeDirs("gap-stop");
    const queen = await queenIn(dirs);
    const hive = await hiveIn(queen, dirs, "hive-a");
    expect((await completion(queen, { model: requireStoriesModel() })).status).toBe(200);
    expect(queen.registry.findModel("stories260k")).toHaveLength(1);
    await hive.close();
    // at once: not after 3 heartbeat intervals of silence
    const hives = (await getJson(`${queen.url}/v1/cluster`)).body.hives;
    expect(hives).toMatchObject([{ id: "hive-a", state: "live", stopping: true }]);
    expect(queen.registry.findModel("stories260k")).toEqual([]);
    expect(queen.registry.routableWorkers("stories260k")).toEqual([]);
    const refused = await completion(queen, { model: "stories260k" });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.body.error.message).not.toMatch(/cannot reach/);
  });

  it("a hive that comes back after its models were placed elsewhere is reconciled: no worker beyond the minimum stays", async () => {
    const dirs = tempRbeeDirs("gap-return");
    const queen = await queenIn(dirs);
    const a = await hiveIn(queen, dirs, "hive-a");
    expect((await completion(queen, { model: requireStoriesModel() })).status).toBe(200);
    const [original] = a.workers();
    const b = await hiveIn(queen, dirs, "hive-b");
    const added = await postJson(`${b.url}/v1/models`, { ref: requireStoriesModel() }, { token: b.token });
    expect(added.status, added.text).toBe(200);
    await waitFor(() => (queen.registry.findModel("stories260k").length === 2 ? true : undefined), LONG);
    // hive-a found unreachable (as when one of its workers refuses a connection and the hive does not
    // answer): its model is placed on hive-b at once; its next heartbeat (within a second) brings it
    // back with its worker
    queen.registry.suspect("hive-a", "the test says it did not answer");
    expect(queen.registry.hives.get("hive-a")?.state).toBe("stale");
    expect(queen.scheduler.stats.replacements).toBe(1);
    await waitFor(() => (queen.registry.hives.get("hive-a")?.state === "live" ? true : undefined), LONG);
    // whatever hive-b was given meanwhile goes again, long before any keep-alive
    await waitFor(
      () => (b.workers().length === 0 && queen.registry.workers.size === 1 ? true : undefined),
      30_000,
      "the replacement on hive-b to be given up",
    );
    expect([...queen.registry.workers.keys()]).toEqual([original?.worker_id]);
    expect((await completion(queen, { model: "stories260k" })).status).toBe(200);
  });
});
