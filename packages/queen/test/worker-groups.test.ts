import type { ClusterGroup, ClusterWorker } from "@rbee/contract";
import { type Hive, type HiveOptions, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { freePort, isPidAlive } from "@rbee/server-kit";
import {
  enginesDir,
  getJson,
  postJson,
  postSse,
  quietLog,
  requireLlamaServerOrSkip,
  requireStoriesModel,
  runJob,
  runRbee,
  startRbee,
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

/** `rbee worker spawn --devices ...`: the CLI asks for the split; it prints the group's worker (its coordinator). */
async function spawnWithCli(queen: Queen, dirs: Dirs, devices: string[]): Promise<ClusterGroup> {
  const args = ["worker", "spawn", "-m", requireStoriesModel(), "--devices", devices.join(",")];
  const r = await runRbee([...args, "-t", "1", "--parallel", "1", "-c", "512", "-q"], {
    env: { ...dirs.env, RBEE_QUEEN_URL: queen.url },
    timeoutMs: LONG,
  });
  expect(r.code, r.stderr).toBe(0);
  const [group] = (await cluster(queen)).groups;
  expect(r.stdout.trim()).toBe(group?.coordinator);
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
      const group = devices.length === 2 ? await spawnWithCli(queen, dirs, devices) : await spawnGroup(queen, devices);
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
      if (devices.length === 2) {
        // `rbee status`: the group is one row, its members beneath it
        const status = await runRbee(["status"], { env: { ...dirs.env, RBEE_QUEEN_URL: queen.url } });
        expect(status.code, status.stderr).toBe(0);
        expect(status.stdout).toMatch(
          new RegExp(`\\n${group.group_id}\\s+stories260k\\s+group\\s+hive-\\S+\\s+2 devices\\s+healthy`),
        );
        expect(status.stdout).toMatch(new RegExp(`├ coordinator ${group.coordinator}\\s+llama-server`));
        expect(status.stdout).toMatch(/├ shard \S+-s0-0\s+rpc-shard\s+hive-a\s+cpu 50%\s+Ready/);
        expect(status.stdout).toMatch(/└ shard \S+-s1-0\s+rpc-shard\s+hive-b\s+cpu 50%\s+Ready/);
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

  it("SIGKILL of one shard in the middle of a stream: the stream ends with an error, the group turns degraded, then healthy again by itself, and a request after that succeeds", async () => {
    const dirs = tempRbeeDirs("grp-queen");
    const queen = await queenIn(dirs);
    for (const id of ["hive-a", "hive-b"]) await hiveIn(queen, dirs, id);
    const group = await spawnGroup(queen, ["hive-a:cpu", "hive-b:cpu"]);
    const before = await complete(queen, "stories260k");
    expect(before.status, before.text).toBe(200);
    const healths = watchHealth(queen);

    const shard = group.members.find((m) => m.role === "shard" && m.hive_id === "hive-b");
    const enginePid = queen.registry.workers.get(shard?.worker_id ?? "")?.report.heartbeat?.engine_pid;
    expect(enginePid).toBeGreaterThan(0);
    let killed = false;
    const stream = await postSse(
      `${queen.url}/v1/completions`,
      { model: "stories260k", prompt: PROMPT, max_tokens: 4000, temperature: 0, stream: true },
      {
        onEvent: (e) => {
          // the stream has begun: kill the shard's ggml-rpc-server under it
          if (!killed && typeof e.data === "object") {
            killed = true;
            process.kill(enginePid as number, "SIGKILL");
          }
          return undefined;
        },
      },
    );
    expect(killed).toBe(true);
    expect(stream.status).toBe(200);
    const last = stream.events.filter((e) => e.data !== "[DONE]").at(-1)?.data as Record<string, any>;
    // the stream ends with OpenAI's error shape, not a finish_reason
    expect(last?.error, JSON.stringify(last)).toMatchObject({ code: expect.any(String) });
    expect(stream.events.some((e) => (e.data as any)?.choices?.[0]?.finish_reason === "length")).toBe(false);

    await waitFor(() => (healths.includes("degraded") ? true : undefined), LONG, "the group to turn degraded");
    const healed = await waitFor(
      async () => (await cluster(queen)).groups.find((g) => g.health === "healthy" && healths.at(-1) === "healthy"),
      LONG,
      "the group to be healthy again by itself",
    );
    expect(healed.members.map((m) => m.worker_id)).toEqual(group.members.map((m) => m.worker_id));
    const after = await complete(queen, "stories260k");
    expect(after.status, after.text).toBe(200);
    expect(after.body.choices[0].text).toBe(before.body.choices[0].text);
  }, 600_000);

  it("SIGKILL of a whole machine (a hive process and its shard): the shard moves to another hive, the coordinator restarts over the new member list, and the group serves again", async () => {
    const dirs = tempRbeeDirs("grp-queen");
    const queen = await queenIn(dirs);
    await hiveIn(queen, dirs, "hive-a");
    await hiveIn(queen, dirs, "hive-c");
    // the model is in hive-a's catalog: the coordinator runs there
    const held = await runJob(queen.url, { type: "download_model", model: requireStoriesModel(), hive: "hive-a" });
    expect(held.error).toBeUndefined();
    const machine = startRbee(
      ["hive", "start", "--foreground", "--port", String(await freePort()), "--hive-id", "machine-b"],
      {
        env: {
          ...tempRbeeDirs("grp-machine").env,
          RBEE_CONFIG_DIR: dirs.configDir,
          RBEE_QUEEN_URL: queen.url,
          RBEE_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
          RBEE_WORKER_PORT_START: String(portBase()),
          RBEE_ENGINES_DIR: enginesDir(),
          RBEE_DEVICES: "[]",
          RBEE_LOG_LEVEL: "info",
        },
      },
    );
    cleanups.push(() => machine.stop(20_000));
    await machine.waitForLine(/"msg":"hive ready"/, LONG);
    await waitFor(() => (queen.registry.hives.get("machine-b")?.state === "live" ? true : undefined), LONG);

    const group = await spawnGroup(queen, ["hive-a:cpu", "machine-b:cpu"]);
    const lostShard = group.members.find((m) => m.hive_id === "machine-b");
    const shardPid = queen.registry.workers.get(lostShard?.worker_id ?? "")?.report.pid as number;
    expect(shardPid).toBeGreaterThan(0);
    cleanups.push(async () => isPidAlive(shardPid) && process.kill(shardPid, "SIGKILL"));
    const healths = watchHealth(queen);

    // the machine dies: its hive and its shard at once
    machine.kill("SIGKILL");
    process.kill(shardPid, "SIGKILL");
    await waitFor(() => (healths.includes("degraded") ? true : undefined), LONG, "the group to turn degraded");
    const moved = await waitFor(
      async () => (await cluster(queen)).groups.find((g) => g.health === "healthy" && g.heals === 1),
      LONG,
      "the group to be rebuilt on the hives left",
    );
    expect(moved.members.filter((m) => m.role === "shard").map((m) => `${m.hive_id}:${m.device}`)).toEqual([
      "hive-a:cpu",
      "hive-c:cpu",
    ]);
    expect(moved.coordinator).not.toBe(group.coordinator);
    const r = await complete(queen, "stories260k");
    expect(r.status, r.text).toBe(200);
    expect(r.body.choices[0].text.length).toBeGreaterThan(20);
  }, 600_000);
});

describe.skipIf(LLAMA_SERVER === undefined)("worker groups and a queen restart", () => {
  it("a restarted queen knows the group again from its coordinator's report (same members, same split) and heals it when a shard dies while the group is idle", async () => {
    const dirs = tempRbeeDirs("grp-queen");
    const port = await freePort();
    const first = await startQueen({
      log: quietLog("queen"),
      port,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: HEARTBEAT_MS,
      sweepIntervalMs: 200,
    });
    for (const id of ["hive-a", "hive-b"]) await hiveIn(first, dirs, id);
    const group = await spawnGroup(first, ["hive-a:cpu", "hive-b:cpu"]);
    await first.close();

    const queen = await startQueen({
      log: quietLog("queen"),
      port,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: HEARTBEAT_MS,
      sweepIntervalMs: 200,
    });
    cleanups.push(() => queen.close());
    const known = await waitFor(
      async () => (await cluster(queen)).groups.find((g) => g.group_id === group.group_id && g.health === "healthy"),
      LONG,
      "the new queen to know the group",
    );
    expect(known.members.map((m) => [m.worker_id, m.role, m.hive_id, m.device, m.fraction])).toEqual(
      group.members.map((m) => [m.worker_id, m.role, m.hive_id, m.device, m.fraction]),
    );
    const served = await complete(queen, "stories260k");
    expect(served.status, served.text).toBe(200);

    const shard = known.members.find((m) => m.role === "shard" && m.hive_id === "hive-a");
    const pid = queen.registry.workers.get(shard?.worker_id ?? "")?.report.heartbeat?.engine_pid as number;
    const healths = watchHealth(queen);
    process.kill(pid, "SIGKILL");
    await waitFor(() => (healths.includes("degraded") ? true : undefined), LONG, "the group to turn degraded");
    // the coordinator was idle: its llama-server would only find out at the next request, so the
    // queen restarts it as soon as the shard's hive has restarted the shard
    const healed = await waitFor(
      async () => (await cluster(queen)).groups.find((g) => g.heals === 1 && g.health === "healthy"),
      LONG,
      "the group to heal (its coordinator restarted over the restarted shard)",
    );
    expect(healed.coordinator).not.toBe(known.coordinator);
    const again = await complete(queen, "stories260k");
    expect(again.status, again.text).toBe(200);
    expect(again.body.choices[0].text).toBe(served.body.choices[0].text);
  }, 600_000);
});

/** Every health the queen's group goes through from now on (polled every 100 ms). */
function watchHealth(queen: Queen): string[] {
  const seen: string[] = [];
  const timer = setInterval(() => {
    const h = queen.scheduler.groups.view()[0]?.health;
    if (h !== undefined && seen.at(-1) !== h) seen.push(h);
  }, 100);
  cleanups.push(async () => clearInterval(timer));
  return seen;
}

describe.skipIf(LLAMA_SERVER === undefined)("worker groups: placement by declared (simulated) device memory", () => {
  /** Hives whose only device is a declared (simulated) CPU with `bytes` of memory. */
  async function declaredHives(queen: Queen, dirs: Dirs, bytes: number[]): Promise<Hive[]> {
    const hives: Hive[] = [];
    for (const [i, memory] of bytes.entries()) {
      const devices = JSON.stringify([{ id: "cpu", name: "CPU (simulated)", memory_total: memory }]);
      hives.push(await hiveIn(queen, dirs, `sim-${i}`, { env: hiveEnv({ RBEE_DEVICES: devices }) }));
    }
    return hives;
  }

  it("declared device memory: a model that fits on no single device is split over two by free memory (--tensor-split in proportion), without being asked; when even the sum is short, the refusal gives what it needs and what each device has", async () => {
    const dirs = tempRbeeDirs("grp-queen");
    const queen = await queenIn(dirs);
    const probe = await hiveIn(queen, dirs, "probe");
    // what the coordinator's type needs for the model at this context (the queen's own estimate)
    const need = (await probe.provisioner.inspect(requireStoriesModel(), 512, 1)).estimate.total;
    await probe.close();
    await waitFor(() => (queen.registry.hives.get("probe")?.state !== "live" ? true : undefined), LONG);
    const small = Math.ceil(need * 0.4);
    const large = Math.ceil(need * 0.8);
    await declaredHives(queen, dirs, [small, large]);

    // the sum is short: refused, with the figures
    const refused = await runJob(queen.url, {
      type: "spawn_worker",
      model: requireStoriesModel(),
      devices: ["sim-0:cpu", "sim-1:cpu"],
      ctx_size: 4096,
      parallel: 64,
      threads: 1,
    });
    expect(refused.error?.code).toBe("insufficient_memory");
    expect(refused.error?.message).toMatch(
      /needs [\d.]+ [KMG]i?B and the devices asked for have [\d.]+ [KMG]i?B free in all \(sim-0:cpu [\d.]+ [KMG]i?B, sim-1:cpu [\d.]+ [KMG]i?B\)/,
    );

    // it fits on neither device alone, and on both together: a group, split 1:2
    const job = await runJob(queen.url, {
      type: "spawn_worker",
      model: requireStoriesModel(),
      threads: 1,
      parallel: 1,
      ctx_size: 512,
    });
    expect(job.error, JSON.stringify(job.events.slice(-3))).toBeUndefined();
    const [group] = (await cluster(queen)).groups;
    const shards = (group as ClusterGroup).members.filter((m) => m.role === "shard");
    expect(shards.map((s) => s.hive_id)).toEqual(["sim-1", "sim-0"]);
    expect(shards[0]?.fraction).toBeCloseTo(2 / 3, 2);
    expect(shards[1]?.fraction).toBeCloseTo(1 / 3, 2);
    for (const s of shards) expect(s.memory_bytes).toBeLessThanOrEqual(s.hive_id === "sim-0" ? small : large);
    const r = await complete(queen, "stories260k");
    expect(r.status, r.text).toBe(200);
  }, 600_000);
});
