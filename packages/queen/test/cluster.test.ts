import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { freePort } from "@rbee/server-kit";
import {
  getJson,
  postJson,
  postSse,
  quietLog,
  requireStoriesModel,
  STORIES_GREEDY_PREFIX,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import { afterEach, describe, expect, it } from "vitest";

// 1 s: at 300 ms (stale at 0.9 s) a loaded 2-core machine made workers stale, and stale workers are not routed to
const HEARTBEAT_MS = 1000;

interface Cluster {
  queen: Queen;
  hive: Hive;
  queenPort: number;
  dirs: ReturnType<typeof tempRbeeDirs>;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function startCluster(opts: { maxWaitingPerModel?: number; devices?: string } = {}): Promise<Cluster> {
  const dirs = tempRbeeDirs("cluster");
  const queenPort = await freePort();
  const queen = await startQueen({
    log: quietLog("queen"),
    port: queenPort,
    configDir: dirs.configDir,
    cacheDir: dirs.cacheDir,
    heartbeatIntervalMs: HEARTBEAT_MS,
    sweepIntervalMs: 200,
    maxWaitingPerModel: opts.maxWaitingPerModel,
  });
  cleanups.push(() => queen.close());
  const hive = await startHive({
    log: quietLog("hive"),
    port: 0,
    queenUrl: queen.url,
    hiveId: "test-hive",
    configDir: dirs.configDir,
    cacheDir: dirs.cacheDir,
    heartbeatIntervalMs: HEARTBEAT_MS,
    workerOrphanTimeoutMs: 5_000,
    // away from the default 9300, where other test files' hives look for ports at the same time
    workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
    env: { ...process.env, ...(opts.devices ? { RBEE_DEVICES: opts.devices } : {}) },
  });
  cleanups.push(() => hive.close());
  await waitFor(() => (queen.registry.hives.get("test-hive")?.state === "live" ? true : undefined));
  return { queen, hive, queenPort, dirs };
}

const completion = (queen: Queen, body: Record<string, unknown>) =>
  postJson(`${queen.url}/v1/completions`, { prompt: "Once upon a time", max_tokens: 16, temperature: 0, ...body });

describe("queen with a real hive: scheduling, keep-alive and faults (real workers on stories260K)", () => {
  it("a request for a GGUF path places a worker through the hive, then routes to it", async () => {
    const { queen } = await startCluster();
    const model = requireStoriesModel();
    const created = await postJson(`${queen.url}/v1/jobs`, {
      operation: { type: "infer", model, prompt: "Once upon a time", max_tokens: 12, temperature: 0 },
    });
    const stream = await fetch(`${queen.url}${created.body.sse_url}`);
    const text = await stream.text();
    expect(text).toMatch(/event: narration\n.*spawning llm worker for stories260k on hive test-hive \(cpu/);
    expect(text).toMatch(/model loaded in \d+\.\d s/);
    expect(text).toMatch(/event: done\n/);
    // the path became a catalog id that clients can use from now on, and the worker is reused
    const models = await getJson(`${queen.url}/v1/models`);
    expect(models.body.data.map((m: { id: string }) => m.id)).toContain("stories260k");
    const again = await completion(queen, { model: "stories260k" });
    expect(again.body.choices[0].text.startsWith(STORIES_GREEDY_PREFIX.slice(0, 20))).toBe(true);
    expect(queen.registry.workers.size).toBe(1);
  });

  it("GET /v1/events sends a snapshot, then each change; /metrics counts hives and workers", async () => {
    const { queen } = await startCluster();
    const seen: string[] = [];
    let snapshot: { hives: Array<{ id: string }> } | undefined;
    const events = postSse(`${queen.url}/v1/events`, undefined, {
      method: "GET",
      onEvent: (e) => {
        seen.push(e.event);
        if (e.event === "snapshot") snapshot = e.data.cluster;
        return e.event === "worker_removed" ? "stop" : undefined;
      },
    });
    await waitFor(() => (seen.includes("snapshot") ? true : undefined));
    expect(snapshot?.hives.map((h) => h.id)).toEqual(["test-hive"]);
    await completion(queen, { model: requireStoriesModel(), keep_alive: 0 });
    await events;
    expect(seen).toContain("worker_added");
    expect(seen.at(-1)).toBe("worker_removed");
    const metrics = await getJson(`${queen.url}/metrics`);
    expect(metrics.text).toMatch(/^rbee_queen_hives\{state="live"\} 1/m);
    expect(metrics.text).toMatch(
      /^rbee_queen_http_requests_total\{route="\/v1\/completions",method="POST",status="200"\} 1/m,
    );
  });

  it("a worker idle past its keep-alive is stopped", async () => {
    const { queen, hive } = await startCluster();
    const r = await completion(queen, { model: requireStoriesModel(), keep_alive: "1s" });
    expect(r.status, r.text).toBe(200);
    expect(queen.registry.workers.size).toBe(1);
    await waitFor(
      () => (queen.registry.workers.size === 0 ? true : undefined),
      10_000,
      "the idle worker to be stopped",
    );
    await waitFor(async () =>
      (await getJson(`${hive.url}/v1/workers`, hive.token)).body.workers.length === 0 ? true : undefined,
    );
  });

  it("a worker killed mid-stream fails that stream promptly; the hive restarts it and the next request succeeds", async () => {
    const { queen } = await startCluster();
    await completion(queen, { model: requireStoriesModel() });
    const worker = [...queen.registry.workers.values()][0];
    const pid = worker?.report.pid as number;
    expect(pid).toBeGreaterThan(0);
    let killedAt = 0;
    const r = await postSse(
      `${queen.url}/v1/completions`,
      { model: "stories260k", prompt: "Once upon a time", max_tokens: 2000, temperature: 0, stream: true },
      {
        onEvent: () => {
          if (killedAt === 0) {
            killedAt = Date.now();
            process.kill(pid, "SIGKILL");
          }
          return undefined;
        },
      },
    );
    const last = r.events.at(-1);
    expect(last?.data.error?.code).toBe("worker_unavailable");
    expect(last?.data.error?.message).toMatch(/stopped in the middle of the answer/);
    expect(Date.now() - killedAt).toBeLessThan(3000);
    // the hive restarts it (same id) and the queen routes to it again
    await waitFor(
      () =>
        // (at least one restart: a restart whose port another process took meanwhile is restarted again)
        (queen.registry.workers.get(worker?.id ?? "")?.report.restarts ?? 0) >= 1 &&
        queen.registry.routableWorkers("stories260k").length > 0
          ? true
          : undefined,
      20_000,
      "the restarted worker",
    );
    const next = await completion(queen, { model: "stories260k" });
    expect(next.status, next.text).toBe(200);
  });

  it("a restarted queen knows the cluster again after one heartbeat round, and no worker is lost", async () => {
    const { queen, queenPort, dirs } = await startCluster();
    await completion(queen, { model: requireStoriesModel() });
    const workerId = [...queen.registry.workers.keys()][0];
    await queen.close();
    const t0 = Date.now();
    const reborn = await startQueen({
      port: queenPort,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: HEARTBEAT_MS,
    });
    cleanups.push(() => reborn.close());
    await waitFor(() =>
      reborn.registry.workers.has(workerId ?? "") && reborn.registry.hives.get("test-hive")?.state === "live"
        ? true
        : undefined,
    );
    expect(Date.now() - t0).toBeLessThan(HEARTBEAT_MS * 3 + 500);
    const r = await completion(reborn, { model: "stories260k" });
    expect(r.status, r.text).toBe(200);
    expect([...reborn.registry.workers.keys()]).toEqual([workerId]);
  });

  it("requests beyond the waiting limit get 429 with Retry-After while a worker starts", async () => {
    const { queen } = await startCluster({ maxWaitingPerModel: 1 });
    const model = requireStoriesModel();
    const results = await Promise.all([1, 2, 3].map(() => completion(queen, { model })));
    const refused = results.filter((r) => r.status === 429);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(Number(refused[0]?.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(results.some((r) => r.status === 200)).toBe(true);
  });

  it("a model that fits no device is refused with what it needs and what is free (simulated small device)", async () => {
    const tiny = JSON.stringify([
      { id: "cpu", name: "simulated tiny CPU", memory_total: 32 * 1024 * 1024, memory_free: 2 * 1024 * 1024 },
    ]);
    const { queen } = await startCluster({ devices: tiny });
    const r = await completion(queen, { model: requireStoriesModel() });
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe("insufficient_memory");
    expect(r.body.error.message).toMatch(
      /needs about \d+(\.\d)? MiB .* the largest free device is cpu on hive test-hive with 2 MiB/,
    );
  });
});
