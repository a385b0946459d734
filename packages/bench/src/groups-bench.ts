import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { enginesDir, quietLog, requireStoriesModel, runJob, tempRbeeDirs, waitFor } from "@rbee/testing";
import { median, printTable, round } from "./stats.js";

export interface GroupsBenchResult {
  max_tokens: number;
  rounds: number;
  /** tokens/s through the queen, the model on one device (a llama-server worker): the baseline */
  one_device_tps: number;
  /** tokens/s of the model split over 1, 2 and 3 ggml-rpc-server shards on loopback */
  shards_tps: Record<string, number>;
  /** shards ÷ one device, the median of the rounds' own ratios */
  shards_ratio: Record<string, number>;
  /** time to spawn a group of 2 shards from nothing until it serves (ms) */
  spawn_fresh_ms: number[];
  /** SIGKILL of a shard's ggml-rpc-server to the first successful request (ms) */
  recovery_ms: number[];
  /** recovery ÷ a fresh spawn, medians */
  recovery_ratio: number;
  runs: Record<string, number[]>;
}

const HEARTBEAT_MS = 500;
const MODEL = "stories260k";

async function completion(queen: Queen, maxTokens: number): Promise<{ tokens: number; ms: number; status: number }> {
  const t0 = performance.now();
  const res = await fetch(`${queen.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, prompt: "Once upon a time", max_tokens: maxTokens, temperature: 0 }),
  });
  const body = (await res.json()) as { usage?: { completion_tokens: number } };
  return { tokens: body.usage?.completion_tokens ?? 0, ms: performance.now() - t0, status: res.status };
}

async function tokensPerSecond(queen: Queen, maxTokens: number): Promise<number> {
  const r = await completion(queen, maxTokens);
  if (r.status !== 200) throw new Error(`completion failed: HTTP ${r.status}`);
  return (r.tokens / r.ms) * 1000;
}

/**
 * Worker groups on loopback, the real stack (a queen, three hives, ggml-rpc-server shards and a
 * llama-server coordinator, one thread each) on stories260K: tokens/s of the model split over 1, 2
 * and 3 shards against the model on one device (a llama-server worker, same binary, same flags),
 * measured round by round in the same run; then the time from SIGKILL of a shard to the first
 * successful request, against the time to spawn the same group from nothing.
 */
export async function benchGroups(o: {
  rounds: number;
  maxTokens: number;
  recoveries: number;
}): Promise<GroupsBenchResult> {
  const dirs = tempRbeeDirs("bench-groups");
  const queen = await startQueen({
    log: quietLog("queen"),
    port: 0,
    configDir: dirs.configDir,
    cacheDir: dirs.cacheDir,
    heartbeatIntervalMs: HEARTBEAT_MS,
    sweepIntervalMs: 200,
  });
  const hives: Hive[] = [];
  try {
    for (const id of ["hive-a", "hive-b", "hive-c"]) {
      hives.push(
        await startHive({
          log: quietLog("hive"),
          port: 0,
          queenUrl: queen.url,
          hiveId: id,
          configDir: dirs.configDir,
          cacheDir: tempRbeeDirs(`bench-${id}`).cacheDir,
          heartbeatIntervalMs: HEARTBEAT_MS,
          workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
          env: { ...process.env, RBEE_ENGINES_DIR: enginesDir(), RBEE_DEVICES: "[]" },
        }),
      );
    }
    await waitFor(
      () => ([...queen.registry.hives.values()].every((h) => h.state === "live") ? true : undefined),
      60_000,
    );
    const held = await runJob(queen.url, { type: "download_model", model: requireStoriesModel(), hive: "hive-a" });
    if (held.error) throw new Error(`the model: ${held.error.message}`);
    const spawnOptions = { threads: 1, parallel: 1, ctx_size: 512 };

    const layouts: Record<string, string[]> = {
      "1 shard": ["hive-a:cpu"],
      "2 shards": ["hive-a:cpu", "hive-b:cpu"],
      "3 shards": ["hive-a:cpu", "hive-b:cpu", "hive-c:cpu"],
    };
    const runs: Record<string, number[]> = { "one device": [] };
    const ratios: Record<string, number[]> = {};
    const spawnFresh: number[] = [];
    const recovery: number[] = [];

    const oneDevice = async (): Promise<number> => {
      const job = await runJob(queen.url, {
        type: "spawn_worker",
        model: MODEL,
        worker_type: "llama-server",
        ...spawnOptions,
      });
      if (job.error) throw new Error(`one device: ${job.error.message}`);
      await tokensPerSecond(queen, 16); // warm-up
      const tps = await tokensPerSecond(queen, o.maxTokens);
      await runJob(queen.url, { type: "stop_worker", worker_id: job.result.worker.worker_id });
      return tps;
    };
    const group = async (devices: string[]) => {
      const t0 = performance.now();
      const coordinator = await queen.scheduler.groups.spawn(MODEL, {
        devices: devices.map((d) => ({ hive: d.split(":")[0] as string, device: "cpu" })),
        threads: 1,
        parallel: 1,
        ctxSize: 512,
        keepAliveMs: Number.POSITIVE_INFINITY,
      });
      return { coordinator, spawnMs: performance.now() - t0 };
    };
    const stopGroup = async (coordinatorId: string) => {
      await runJob(queen.url, { type: "stop_worker", worker_id: coordinatorId });
      await waitFor(() => (queen.registry.workers.size === 0 ? true : undefined), 60_000, "the group to stop");
    };

    for (let round = 0; round < o.rounds; round++) {
      // each round: the one-device baseline, then each layout, back to back
      const base = await oneDevice();
      runs["one device"]?.push(round2(base));
      for (const [name, devices] of Object.entries(layouts)) {
        const { coordinator, spawnMs } = await group(devices);
        if (name === "2 shards") spawnFresh.push(Math.round(spawnMs));
        await tokensPerSecond(queen, 16); // warm-up
        const tps = await tokensPerSecond(queen, o.maxTokens);
        add(runs, name, round2(tps));
        add(ratios, name, tps / base);
        if (name === "2 shards" && round < o.recoveries) recovery.push(await recoverOnce(queen));
        await stopGroup(queen.scheduler.groups.view()[0]?.coordinator ?? coordinator.id);
      }
    }
    const shardsTps: Record<string, number> = {};
    const shardsRatio: Record<string, number> = {};
    for (const name of Object.keys(layouts)) {
      shardsTps[name] = round(median(runs[name] ?? []), 1);
      shardsRatio[name] = round(median(ratios[name] ?? []), 3);
    }
    const result: GroupsBenchResult = {
      max_tokens: o.maxTokens,
      rounds: o.rounds,
      one_device_tps: round(median(runs["one device"] ?? []), 1),
      shards_tps: shardsTps,
      shards_ratio: shardsRatio,
      spawn_fresh_ms: spawnFresh,
      recovery_ms: recovery,
      recovery_ratio: round(median(recovery) / median(spawnFresh), 3),
      runs: { ...runs, recovery_ms: recovery, spawn_fresh_ms: spawnFresh },
    };
    printTable([
      { layout: "one device", "tok/s": result.one_device_tps, "÷ one device": 1 },
      ...Object.keys(layouts).map((name) => ({
        layout: name,
        "tok/s": shardsTps[name] ?? 0,
        "÷ one device": shardsRatio[name] ?? 0,
      })),
    ]);
    printTable([
      {
        "2-shard group": "spawned fresh (ms)",
        median: Math.round(median(spawnFresh)),
        runs: spawnFresh.join(", "),
      },
      {
        "2-shard group": "SIGKILL of a shard to first success (ms)",
        median: Math.round(median(recovery)),
        runs: recovery.join(", "),
      },
    ]);
    return result;
  } finally {
    for (const h of hives.reverse()) await h.close().catch(() => undefined);
    await queen.close();
  }
}

const round2 = (n: number) => round(n, 1);

function add(to: Record<string, number[]>, key: string, value: number): void {
  const list = to[key] ?? [];
  list.push(value);
  to[key] = list;
}

/** SIGKILL of the second shard's ggml-rpc-server, then requests until one succeeds: the time between. */
async function recoverOnce(queen: Queen): Promise<number> {
  const shard = queen.scheduler.groups.view()[0]?.members.find((m) => m.role === "shard" && m.hive_id === "hive-b");
  const pid = queen.registry.workers.get(shard?.worker_id ?? "")?.report.heartbeat?.engine_pid;
  if (typeof pid !== "number") throw new Error("no shard engine pid to kill");
  const t0 = performance.now();
  process.kill(pid, "SIGKILL");
  for (;;) {
    const r = await completion(queen, 8).catch(() => ({ status: 0, tokens: 0, ms: 0 }));
    // every request needs every shard: the first 200 is a group that serves again
    if (r.status === 200) return Math.round(performance.now() - t0);
    if (performance.now() - t0 > 120_000) throw new Error("the group did not recover within 120 s");
    await new Promise((r) => setTimeout(r, 50));
  }
}
