import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Hive, type HiveOptions, startHive } from "@rbee/hive";
import { type Queen, type QueenOptions, startQueen } from "@rbee/queen";
import { postJson, quietLog, requireStoriesModel, tempRbeeDirs, waitFor } from "@rbee/testing";
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
});
