import type { ClusterGroup, ClusterWorker } from "@rbee/contract";
import { type Hive, type HiveOptions, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import {
  enginesDir,
  getJson,
  postJson,
  quietLog,
  requireLlamaServerOrSkip,
  requireStoriesModel,
  runJob,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import { afterEach, describe, expect, it } from "vitest";

/**
 * Worker groups on the real binaries (`rbee engine build llama.cpp`: ggml-rpc-server shards and a
 * llama-server coordinator), on loopback, with stories260K and one thread per process: a model
 * split over 2 and 3 shards gives the greedy text of one device; a shard killed in the middle of a
 * stream ends that stream with an error and the group heals by itself; a "machine" killed (a hive
 * and its shard) moves the shard to another hive.
 */
const LLAMA_SERVER = requireLlamaServerOrSkip();
const HEARTBEAT_MS = 500;
const LONG = 120_000;
const PROMPT = "Once upon a time";

type Dirs = ReturnType<typeof tempRbeeDirs>;
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

const portBase = () => 20_000 + Math.floor(Math.random() * 30_000);

async function queenIn(dirs: Dirs): Promise<Queen> {
  const queen = await startQueen({
    log: quietLog("queen"),
    port: 0,
    configDir: dirs.configDir,
    cacheDir: dirs.cacheDir,
    heartbeatIntervalMs: HEARTBEAT_MS,
    sweepIntervalMs: 200,
  });
  cleanups.push(() => queen.close());
  return queen;
}

/** The engines this machine built: every hive of these tests runs the real binaries. */
const hiveEnv = (extra: Record<string, string> = {}) => ({
  ...process.env,
  RBEE_ENGINES_DIR: enginesDir(),
  RBEE_DEVICES: "[]",
  ...extra,
});

/** A hive with a cache of its own (another "machine"), sharing the queen's config (its cluster token). */
async function hiveIn(queen: Queen, queenDirs: Dirs, id: string, extra: HiveOptions = {}): Promise<Hive> {
  const hive = await startHive({
    log: quietLog("hive"),
    port: 0,
    queenUrl: queen.url,
    hiveId: id,
    configDir: queenDirs.configDir,
    cacheDir: tempRbeeDirs(`grp-${id}`).cacheDir,
    heartbeatIntervalMs: HEARTBEAT_MS,
    workerOrphanTimeoutMs: 20_000,
    workerPortStart: portBase(),
    env: hiveEnv(),
    ...extra,
  });
  cleanups.push(() => hive.close());
  await waitFor(() => (queen.registry.hives.get(id)?.state === "live" ? true : undefined), LONG, `hive ${id} live`);
  return hive;
}

const complete = (queen: Queen, model: string, maxTokens = 40) =>
  postJson(`${queen.url}/v1/completions`, { model, prompt: PROMPT, max_tokens: maxTokens, temperature: 0 });

const cluster = async (queen: Queen): Promise<{ workers: ClusterWorker[]; groups: ClusterGroup[] }> =>
  (await getJson(`${queen.url}/v1/cluster`)).body;

async function spawnGroup(queen: Queen, devices: string[]) {
  const job = await runJob(queen.url, {
    type: "spawn_worker",
    model: requireStoriesModel(),
    devices,
    threads: 1,
    parallel: 1,
    ctx_size: 512,
  });
  expect(job.error, JSON.stringify(job.events.slice(-3))).toBeUndefined();
  const [group] = (await cluster(queen)).groups;
  expect(group).toBeDefined();
  return group as ClusterGroup;
}

/** The greedy text of stories260K on one device: a llama-server worker of its own, then stopped. */
async function oneDeviceText(queen: Queen): Promise<string> {
  const job = await runJob(queen.url, {
    type: "spawn_worker",
    model: requireStoriesModel(),
    worker_type: "llama-server",
    threads: 1,
    parallel: 1,
    ctx_size: 512,
  });
  expect(job.error, JSON.stringify(job.events.slice(-3))).toBeUndefined();
  const r = await complete(queen, "stories260k");
  expect(r.status, r.text).toBe(200);
  const stop = await runJob(queen.url, { type: "stop_worker", worker_id: job.result.worker.worker_id });
  expect(stop.error).toBeUndefined();
  return r.body.choices[0].text as string;
}

describe.skipIf(LLAMA_SERVER === undefined)("worker groups on the real ggml-rpc-server and llama-server", () => {
  it("a group of 2 and a group of 3 shards give the greedy text of the model on one device; the group is one worker to clients, its shards are not routed to", async () => {
    const dirs = tempRbeeDirs("grp-queen");
    const queen = await queenIn(dirs);
    for (const id of ["hive-a", "hive-b", "hive-c"]) await hiveIn(queen, dirs, id);
    const baseline = await oneDeviceText(queen);
    expect(baseline.length).toBeGreaterThan(20);

    for (const devices of [
      ["hive-a:cpu", "hive-b:cpu"],
      ["hive-a:cpu", "hive-b:cpu", "hive-c:cpu"],
    ]) {
      const group = await spawnGroup(queen, devices);
      expect(group).toMatchObject({ health: "healthy", model: "stories260k" });
      const shards = group.members.filter((m) => m.role === "shard");
      expect(shards.map((m) => `${m.hive_id}:${m.device}`)).toEqual(devices);
      // equal free memory: equal shares
      for (const s of shards) expect(s.fraction).toBeCloseTo(1 / devices.length, 2);

      const r = await complete(queen, "stories260k");
      expect(r.status, r.text).toBe(200);
      expect(r.body.choices[0].text).toBe(baseline);

      // (its status lags a heartbeat behind the request: waited for, not read at once)
      await waitFor(
        async () =>
          (await cluster(queen)).workers.find((w) => w.worker_id === group.coordinator && w.routable)
            ? true
            : undefined,
        LONG,
        "the coordinator to be routable",
      );
      expect(queen.registry.routableWorkers("stories260k").map((w) => w.id)).toEqual([group.coordinator]);
      // the coordinator's heartbeat carries the group's fields
      const hb = queen.registry.workers.get(group.coordinator)?.report.heartbeat;
      expect(hb).toMatchObject({ group_id: group.group_id, role: "coordinator", group_health: "healthy", devices });
      expect(Object.keys(hb?.vram_per_device ?? {})).toEqual(devices);
      expect(hb?.shard_workers?.map((s) => s.worker_id)).toEqual(shards.map((s) => s.worker_id));
      for (const s of shards) {
        expect(queen.registry.workers.get(s.worker_id)?.report.heartbeat).toMatchObject({
          group_id: group.group_id,
          role: "shard",
          rpc_endpoint: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
        });
      }
      const stop = await runJob(queen.url, { type: "stop_worker", worker_id: group.coordinator });
      expect(stop.error).toBeUndefined();
      await waitFor(
        async () => ((await cluster(queen)).workers.length === 0 ? true : undefined),
        LONG,
        "the group's members to stop with its coordinator",
      );
    }
  }, 600_000);
});
