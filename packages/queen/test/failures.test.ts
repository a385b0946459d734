import { copyFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ClusterEvent, ClusterWorker } from "@rbee/contract";
import { type Hive, type HiveOptions, startHive } from "@rbee/hive";
import { type Queen, type QueenOptions, startQueen } from "@rbee/queen";
import { freePort, isPidAlive } from "@rbee/server-kit";
import {
  type ChildHandle,
  getJson,
  NetworkLink,
  postJson,
  postSse,
  quietLog,
  requireStoriesModel,
  runRbee,
  startRbee,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import { afterEach, describe, expect, it } from "vitest";

/**
 * The failures of issue 5, each with a real queen, real hives and real llm workers on stories260K:
 * a queen restart, a hive restart (SIGKILL and a graceful stop), the network between a hive and the
 * queen cut and restored, and a worker that keeps crashing. Heartbeats are short (300 ms: stale
 * after 0.9 s, lost after 1.8 s) to keep the tests quick; waits are generous (2 shared cores).
 */
const HEARTBEAT_MS = 300;
const LONG = 60_000;

type Dirs = ReturnType<typeof tempRbeeDirs>;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

/** A worker port range of its own for each hive, so that test files running side by side rarely meet. */
const portBase = () => 20_000 + Math.floor(Math.random() * 30_000);

async function queenAt(port: number, dirs: Dirs, extra: QueenOptions = {}): Promise<Queen> {
  const queen = await startQueen({
    log: quietLog("queen"),
    port,
    configDir: dirs.configDir,
    cacheDir: dirs.cacheDir,
    heartbeatIntervalMs: HEARTBEAT_MS,
    sweepIntervalMs: 200,
    ...extra,
  });
  cleanups.push(() => queen.close());
  return queen;
}

async function hiveIn(queenUrl: string, dirs: Dirs, extra: HiveOptions = {}): Promise<Hive> {
  const hive = await startHive({
    log: quietLog("hive"),
    port: 0,
    queenUrl,
    hiveId: "test-hive",
    configDir: dirs.configDir,
    cacheDir: dirs.cacheDir,
    heartbeatIntervalMs: HEARTBEAT_MS,
    workerOrphanTimeoutMs: 20_000,
    workerPortStart: portBase(),
    env: { ...process.env, RBEE_DEVICES: "[]" },
    ...extra,
  });
  cleanups.push(() => hive.close());
  return hive;
}

/** `rbee hive start --foreground` as a child process: the real CLI, a process the test can SIGKILL. */
async function hiveProcess(o: { queenUrl: string; dirs: Dirs; port: number; workerPortStart: number }) {
  const child = startRbee(["hive", "start", "--foreground", "--port", String(o.port), "--hive-id", "proc-hive"], {
    env: {
      ...o.dirs.env,
      RBEE_QUEEN_URL: o.queenUrl,
      RBEE_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
      RBEE_WORKER_PORT_START: String(o.workerPortStart),
      RBEE_DEVICES: "[]",
      RBEE_LOG_LEVEL: "info",
    },
  });
  cleanups.push(() => child.stop(20_000));
  await child.waitForLine(/"msg":"hive ready"/, LONG);
  return child;
}

const completion = (queen: Queen, body: Record<string, unknown>) =>
  postJson(`${queen.url}/v1/completions`, { prompt: "Once upon a time", max_tokens: 8, temperature: 0, ...body });

const clusterWorkers = async (queen: Queen): Promise<ClusterWorker[]> =>
  (await getJson(`${queen.url}/v1/cluster`)).body.workers;

/** Every cluster event of the queen from now on (to check that a worker was never dropped). */
function recordEvents(queen: Queen): ClusterEvent[] {
  const events: ClusterEvent[] = [];
  cleanups.push(async () => unsubscribe());
  const unsubscribe = queen.registry.subscribe((e) => events.push(e));
  return events;
}

const removals = (events: ClusterEvent[], workerId: string) =>
  events.filter((e) => e.type === "worker_removed" && e.worker_id === workerId);

describe("failures: queen restart, hive restart, network loss, crash loop (real workers on stories260K)", () => {
  it("a restarted queen knows the hive and its running worker again after one heartbeat round (same id, same keep-alive) and serves without a new spawn", async () => {
    const dirs = tempRbeeDirs("fail-queen");
    const port = await freePort();
    const queen = await queenAt(port, dirs);
    const hive = await hiveIn(queen.url, dirs);
    await waitFor(() => (queen.registry.hives.get("test-hive")?.state === "live" ? true : undefined), LONG);
    const first = await completion(queen, { model: requireStoriesModel(), keep_alive: "7m" });
    expect(first.status, first.text).toBe(200);
    const [before] = await clusterWorkers(queen);
    // (its status lags: the hive reports Busy → Ready within a second, so it is not checked here)
    expect(before).toMatchObject({ keep_alive_ms: 7 * 60_000 });
    const worker = before as ClusterWorker;
    // the queen hands a keep-alive a request set to the hive in its next heartbeat reply; the hive
    // keeps it and reports it back, which is how a restarted queen learns it
    await waitFor(
      () => (hive.workers()[0]?.keep_alive_ms === 7 * 60_000 ? true : undefined),
      LONG,
      "the hive to hold the worker's keep-alive",
    );

    await queen.close();
    const t0 = Date.now();
    const reborn = await queenAt(port, dirs);
    const known = await waitFor(
      async () => (await clusterWorkers(reborn)).find((w) => w.worker_id === worker.worker_id && w.routable),
      LONG,
      "the new queen to know the running worker",
    );
    // one heartbeat round: the hive's retry backoff is capped at one interval
    expect(Date.now() - t0).toBeLessThan(HEARTBEAT_MS * 3 + 2000);
    expect(known).toMatchObject({ pid: worker.pid, url: worker.url, keep_alive_ms: 7 * 60_000, hive_id: "test-hive" });
    expect(reborn.registry.hives.get("test-hive")?.state).toBe("live");

    const again = await completion(reborn, { model: "stories260k" });
    expect(again.status, again.text).toBe(200);
    expect(hive.workers().map((w) => w.worker_id)).toEqual([worker.worker_id]);
    expect(hive.workers()[0]?.pid).toBe(worker.pid);
    expect(hive.workers()[0]?.restarts).toBe(0);
    await waitFor(
      () => ((hive.workers()[0]?.heartbeat?.requests_total ?? 0) >= 2 ? true : undefined),
      LONG,
      "the same worker to have served both requests",
    );
  });

  // found by the chaos suite (seed 1): requests sent to a restarted queen before the hives' first
  // heartbeats reached it got 404 model_not_found for a model a running worker served
  it("a request that reaches a restarted queen before any hive has heartbeated waits for the first round and is served by the running worker", async () => {
    const dirs = tempRbeeDirs("fail-queen-first-round");
    const port = await freePort();
    // 1 s heartbeats: a hive that lost its queen retries at most an interval apart
    const slow = { heartbeatIntervalMs: 1000 };
    const queen = await queenAt(port, dirs, slow);
    const hive = await hiveIn(queen.url, dirs, slow);
    await waitFor(() => (queen.registry.hives.get("test-hive")?.state === "live" ? true : undefined), LONG);
    const first = await completion(queen, { model: requireStoriesModel(), keep_alive: "7m" });
    expect(first.status, first.text).toBe(200);
    const pid = hive.workers()[0]?.pid;

    await queen.close();
    // long enough for the hive's retries to back off to one interval
    await new Promise((r) => setTimeout(r, 2500));
    const reborn = await queenAt(port, dirs, slow);
    const early = await completion(reborn, { model: "stories260k" });
    expect(early.status, early.text).toBe(200);
    expect(hive.workers().map((w) => w.pid)).toEqual([pid]);
    expect(reborn.registry.workers.size).toBe(1);
  });

  it("a hive killed with SIGKILL leaves its workers running; restarted, it adopts them and the queen keeps routing to the same worker, which it restarts if it crashes later; a graceful stop removes them from the queen at once", async () => {
    const dirs = tempRbeeDirs("fail-hive");
    const queen = await queenAt(0, dirs);
    const events = recordEvents(queen);
    const hivePort = await freePort();
    const workerPortStart = portBase();
    const opts = { queenUrl: queen.url, dirs, port: hivePort, workerPortStart };
    const first = await hiveProcess(opts);
    await waitFor(() => (queen.registry.hives.get("proc-hive")?.state === "live" ? true : undefined), LONG);
    const r = await completion(queen, { model: requireStoriesModel(), keep_alive: "7m" });
    expect(r.status, r.text).toBe(200);
    const [worker] = await clusterWorkers(queen);
    const { worker_id: id, pid } = worker as ClusterWorker;
    expect(pid).toBeGreaterThan(0);
    cleanups.push(async () => isPidAlive(pid as number) && process.kill(pid as number, "SIGKILL"));

    first.kill("SIGKILL");
    expect(await first.waitForExit(10_000)).toEqual({ code: null, signal: "SIGKILL" });
    await waitFor(
      () => (queen.registry.hives.get("proc-hive")?.state !== "live" ? true : undefined),
      LONG,
      "the queen to see the hive stop heartbeating",
    );
    expect(isPidAlive(pid as number)).toBe(true);
    expect(queen.registry.routableWorkers("stories260k")).toEqual([]);

    const second: ChildHandle = await hiveProcess(opts);
    const back = await waitFor(
      async () =>
        (await clusterWorkers(queen)).find((w) => w.worker_id === id && w.routable && w.pid === pid)
          ? queen.registry.workers.get(id)
          : undefined,
      LONG,
      "the restarted hive to adopt the worker and the queen to route to it again",
    );
    expect(back.keepAliveMs).toBe(7 * 60_000);
    expect(second.stdout).toMatch(/"msg":"adopted a running worker/);
    const served = await completion(queen, { model: "stories260k" });
    expect(served.status, served.text).toBe(200);
    expect([...queen.registry.workers.keys()]).toEqual([id]);
    // the queen never dropped the worker (and so never spawned another for the model)
    expect(removals(events, id)).toEqual([]);
    expect(events.filter((e) => e.type === "worker_added")).toHaveLength(1);

    // the restarted hive knows how the worker was started (its record): a crash now is restarted as usual
    process.kill(pid as number, "SIGKILL");
    const restarted = await waitFor(
      async () => (await clusterWorkers(queen)).find((w) => w.worker_id === id && w.routable && w.restarts === 1),
      LONG,
      "the taken-back worker to be restarted after a crash",
    );
    expect(restarted.pid).not.toBe(pid);
    expect(restarted.last_exit?.reason).toMatch(/process is gone/);
    expect((await completion(queen, { model: "stories260k" })).status).toBe(200);
    const newPid = restarted.pid as number;
    cleanups.push(async () => isPidAlive(newPid) && process.kill(newPid, "SIGKILL"));

    // a graceful stop: the hive stops its workers and its last heartbeat says so
    const stopping = Date.now();
    second.kill("SIGTERM");
    await waitFor(
      () => (queen.registry.workers.size === 0 ? true : undefined),
      LONG,
      "the queen to drop the stopped hive's worker",
    );
    const removedAfter = Date.now() - stopping;
    // by the hive's last heartbeat, not by the queen noticing its silence: the worker went while the hive was live
    const stateThen = queen.registry.hives.get("proc-hive")?.state;
    expect(await second.waitForExit(30_000)).toEqual({ code: 0, signal: null });
    expect(isPidAlive(newPid)).toBe(false);
    expect(removals(events, id)).toHaveLength(1);
    expect(removedAfter).toBeLessThan(10_000);
    expect(stateThen).toBe("live");
  });

  describe("the network between a hive and the queen (a link the test cuts and restores)", () => {
    /**
     * The queen reaches the hive and its workers at 127.0.0.2 (the hive advertises it), the hive
     * reaches the queen at a forwarded port: all of it goes through one link. The workers' own
     * heartbeats go to the hive at 127.0.0.1, beside the link, as on one machine.
     */
    async function splitCluster() {
      const dirs = tempRbeeDirs("fail-net");
      const queen = await queenAt(0, dirs);
      const link = new NetworkLink();
      cleanups.push(() => link.close());
      const toQueen = await link.forward({ targetPort: Number(new URL(queen.url).port) });
      const hivePort = await freePort();
      const workerPortStart = portBase();
      await link.forward({ listenHost: "127.0.0.2", listenPort: hivePort, targetPort: hivePort });
      for (let p = workerPortStart; p < workerPortStart + 4; p++)
        await link.forward({ listenHost: "127.0.0.2", listenPort: p, targetPort: p });
      const hive = await hiveIn(toQueen.url, dirs, {
        port: hivePort,
        advertiseUrl: `http://127.0.0.2:${hivePort}`,
        workerPortStart,
      });
      await waitFor(() => (queen.registry.hives.get("test-hive")?.state === "live" ? true : undefined), LONG);
      const r = await completion(queen, { model: requireStoriesModel() });
      expect(r.status, r.text).toBe(200);
      const worker = [...queen.registry.workers.values()][0];
      expect(worker?.report.url).toMatch(/^http:\/\/127\.0\.0\.2:/);
      return { queen, hive, link, workerId: worker?.id as string };
    }

    it("cut: the hive keeps its workers, the queen marks it stale after 3 intervals and lost after 6 and routes nothing there; restored: live again with the same workers, which serve again", async () => {
      const { queen, hive, link, workerId } = await splitCluster();
      const events = recordEvents(queen);
      const pid = hive.workers()[0]?.pid;
      // the worker's own count of requests, as its heartbeat to the hive says (the first one is in)
      const servedBefore = await waitFor(() => hive.workers()[0]?.heartbeat?.requests_total || undefined, LONG);

      link.cut();
      const cutAt = Date.now();
      const lastSeen = queen.registry.hives.get("test-hive")?.lastSeen as number;
      await waitFor(() => (queen.registry.hives.get("test-hive")?.state === "lost" ? true : undefined), LONG);
      const states = events.flatMap((e) =>
        e.type === "hive_state" ? [{ state: e.state, after: e.at - lastSeen }] : [],
      );
      expect(states.map((s) => s.state)).toEqual(["stale", "lost"]);
      expect(states[0]?.after).toBeGreaterThan(3 * HEARTBEAT_MS);
      expect(states[1]?.after).toBeGreaterThan(6 * HEARTBEAT_MS);

      // nothing new goes to the lost hive: a request fails at once, with words, and never reaches the worker
      const refused = await completion(queen, { model: "stories260k" });
      expect(refused.status).toBe(503);
      expect(refused.body.error.message).toMatch(/no worker for stories260k can take requests now/);
      expect((await getJson(`${queen.url}/v1/cluster`)).body.workers[0]).toMatchObject({
        worker_id: workerId,
        routable: false,
      });

      // the hive, cut off from the queen, keeps its worker: its heartbeats go to the hive
      await new Promise((r) => setTimeout(r, 4 * HEARTBEAT_MS));
      expect(Date.now() - cutAt).toBeGreaterThan(6 * HEARTBEAT_MS);
      expect(hive.workers()).toHaveLength(1);
      expect(hive.workers()[0]).toMatchObject({ worker_id: workerId, pid, status: "Ready", stale: false });
      expect(hive.workers()[0]?.heartbeat?.requests_total).toBe(servedBefore);

      link.restore();
      await waitFor(
        () =>
          queen.registry.hives.get("test-hive")?.state === "live" &&
          queen.registry.routableWorkers("stories260k").length === 1
            ? true
            : undefined,
        LONG,
        "the hive to be live again with its worker",
      );
      expect([...queen.registry.workers.keys()]).toEqual([workerId]);
      expect(removals(events, workerId)).toEqual([]);
      const served = await completion(queen, { model: "stories260k" });
      expect(served.status, served.text).toBe(200);
      await waitFor(
        () => ((hive.workers()[0]?.heartbeat?.requests_total ?? 0) > servedBefore ? true : undefined),
        LONG,
        "the same worker to serve again",
      );
      expect(hive.workers()[0]?.pid).toBe(pid);
    });

    // without the queen failing requests in flight on a hive that turns lost, this stream would hang
    // until the link came back
    it("a request streaming from a worker on a hive that turns lost fails fast with a clear error", async () => {
      const { queen, link } = await splitCluster();
      let cutAt = 0;
      const result = postSse(
        `${queen.url}/v1/completions`,
        { model: "stories260k", prompt: "Once upon a time", max_tokens: 4000, temperature: 0, stream: true },
        {
          onEvent: () => {
            if (cutAt === 0) {
              cutAt = Date.now();
              link.cut(); // stalled, not closed: only the hive turning lost can end this stream
            }
            return undefined;
          },
        },
      );
      const r = await Promise.race([
        result,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("the stream did not end after its hive was lost")), 30_000),
        ),
      ]);
      const last = r.events.at(-1);
      expect(last?.data.error?.message).toMatch(/hive test-hive .*lost/);
      expect(queen.registry.hives.get("test-hive")?.state).toBe("lost");
      expect(Date.now() - cutAt).toBeLessThan(15_000);
    });
  });

  it("a worker that keeps crashing is restarted with backoff, then given up: Failed with its last exit in /v1/cluster and `rbee status`, not routed to, and a request for its model gets a clear error", async () => {
    const dirs = tempRbeeDirs("fail-crash");
    const queen = await queenAt(0, dirs);
    const hive = await hiveIn(queen.url, dirs, {
      restart: { maxRestarts: 2, backoffMs: 200, maxBackoffMs: 1000, windowMs: 60_000 },
    });
    await waitFor(() => (queen.registry.hives.get("test-hive")?.state === "live" ? true : undefined), LONG);
    // a copy of the model that breaks once its worker runs: every restart then dies while loading
    const path = join(dirs.root, "flaky.gguf");
    await copyFile(requireStoriesModel(), path);
    const first = await completion(queen, { model: path });
    expect(first.status, first.text).toBe(200);
    const [worker] = await clusterWorkers(queen);
    const { worker_id: id, pid, model } = worker as ClusterWorker;
    await writeFile(join(dirs.root, "corrupt.tmp"), Buffer.concat([Buffer.from("GGUF"), Buffer.alloc(4096, 7)]));
    await rename(join(dirs.root, "corrupt.tmp"), path);
    process.kill(pid as number, "SIGKILL");

    const failed = await waitFor(
      async () => (await clusterWorkers(queen)).find((w) => w.worker_id === id && w.status === "Failed"),
      LONG,
      "the worker to be given up (Failed)",
    );
    expect(failed).toMatchObject({ restarts: 2, pid: null, routable: false });
    expect(failed.last_exit).toMatchObject({ code: 1, reason: "exited with code 1" });
    const hiveSide = hive.workers().find((w) => w.worker_id === id);
    expect(hiveSide?.status).toBe("Failed");

    const status = await runRbee(["status"], { env: { ...dirs.env, RBEE_QUEEN_URL: queen.url } });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`${id}.*Failed`));
    expect(status.stdout).toMatch(/exited with code 1/);

    // a request for its model is not routed to it and does not hang: the hive found the model's file
    // changed (issue 15), so no worker is started for it, and the client is told why at once
    const r = await completion(queen, { model });
    expect(r.status, r.text).toBe(503);
    expect(r.body.error.code).toBe("worker_unavailable");
    expect(r.body.error.message).toMatch(
      /hive test-hive has it, but it is Failed: the model file \S+flaky\.gguf is 4100 bytes but was \d+ when it was added \(truncated\?\)/,
    );
    expect(hive.workers().map((w) => [w.worker_id, w.status])).toEqual([[id, "Failed"]]);
    expect(queen.registry.workers.size).toBe(1);
    expect(queen.registry.workers.get(id)?.report.status).toBe("Failed");

    // what `rbee status` suggests clears it
    const stop = await runRbee(["worker", "stop", id, "--quiet"], { env: { ...dirs.env, RBEE_QUEEN_URL: queen.url } });
    expect(stop.code, stop.stderr).toBe(0);
    expect(await clusterWorkers(queen)).toEqual([]);
    expect(hive.workers()).toEqual([]);
  });
});
