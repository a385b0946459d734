import type { ClusterWorker } from "@rbee/contract";
import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { isPidAlive } from "@rbee/server-kit";
import { getJson, postJson, quietLog, requireStoriesModel, tempRbeeDirs, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Issue 15, defect 2: a worker frozen with SIGSTOP (its process is there, its port accepts
 * connections, nothing answers). Requests must not hang on it, and once its hive finds it stale the
 * queen must stop routing to it.
 */
const HEARTBEAT_MS = 400;

describe("a frozen worker (SIGSTOP) is not routed to (issue 15: defect 2)", () => {
  let queen: Queen;
  let hive: Hive;
  let frozenPid = 0;

  beforeAll(async () => {
    const dirs = tempRbeeDirs("stale-worker");
    queen = await startQueen({
      log: quietLog("queen"),
      port: 0,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: HEARTBEAT_MS,
      sweepIntervalMs: 200,
      firstByteTimeoutMs: 1500,
    });
    hive = await startHive({
      log: quietLog("hive"),
      port: 0,
      queenUrl: queen.url,
      hiveId: "stale-hive",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: HEARTBEAT_MS,
      workerOrphanTimeoutMs: 60_000,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
      env: { ...process.env, RBEE_DEVICES: "[]" },
    });
  });
  afterAll(async () => {
    if (frozenPid > 0 && isPidAlive(frozenPid)) process.kill(frozenPid, "SIGCONT");
    await hive?.close();
    await queen?.close();
  });

  it("requests reach the other worker within the first-byte timeout; once stale, the frozen one shows routable: false", async () => {
    const auth = { token: hive.token };
    const model = await postJson(`${hive.url}/v1/models`, { ref: requireStoriesModel() }, auth);
    expect(model.status, model.text).toBe(200);
    const spawned: Array<{ pid: number; worker_id: string }> = [];
    for (const id of ["llm-frozen-a", "llm-alive-b"]) {
      const r = await postJson(`${hive.url}/v1/workers`, { model: model.body.id, worker_id: id }, auth);
      expect(r.status, r.text).toBe(201);
      spawned.push(r.body);
    }
    const [frozen, alive] = spawned as [{ pid: number; worker_id: string }, { pid: number; worker_id: string }];
    const workers = async (): Promise<ClusterWorker[]> => (await getJson(`${queen.url}/v1/cluster`)).body.workers;
    await waitFor(async () => ((await workers()).filter((w) => w.routable).length === 2 ? true : undefined), 30_000);

    frozenPid = frozen.pid;
    process.kill(frozen.pid, "SIGSTOP");
    // two at once: one of them is routed to the frozen worker before anything knows it is frozen
    const ask = () =>
      postJson(
        `${queen.url}/v1/completions`,
        { model: model.body.id, prompt: "Once upon a time", max_tokens: 4, temperature: 0 },
        { signal: AbortSignal.timeout(30_000) },
      );
    const replies = await Promise.all([ask(), ask(), ask()]);
    for (const r of replies) expect(r.status, r.text).toBe(200);

    // the hive finds it stale after 3 intervals, and the queen follows
    const seen = await waitFor(async () => {
      const w = (await workers()).find((x) => x.worker_id === frozen.worker_id);
      return w?.stale === true ? w : undefined;
    }, 30_000);
    expect(seen.routable).toBe(false);
    expect((await workers()).find((x) => x.worker_id === alive.worker_id)?.routable).toBe(true);
    // while it is stale, requests go to the other worker at once
    const later = await Promise.all([ask(), ask()]);
    for (const r of later) expect(r.status, r.text).toBe(200);
    process.kill(frozen.pid, "SIGCONT");
    frozenPid = 0;
  });
});
