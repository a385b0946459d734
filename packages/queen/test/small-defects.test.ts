import { copyFile, mkdtemp, rm, truncate } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { getJson, postJson, quietLog, requireStoriesModel, runJob, tempRbeeDirs, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/** Issue 15, defect 10: threads above the cores, too many embedding inputs, a truncated model file. */
describe("the smaller defects of issue 15 (defect 10)", () => {
  let queen: Queen;
  let hive: Hive;
  let models: string;

  beforeAll(async () => {
    const dirs = tempRbeeDirs("small-defects");
    models = await mkdtemp(join(tmpdir(), "rbee-small-defects-"));
    queen = await startQueen({
      log: quietLog("queen"),
      port: 0,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 300,
      sweepIntervalMs: 200,
    });
    hive = await startHive({
      log: quietLog("hive"),
      port: 0,
      queenUrl: queen.url,
      hiveId: "small-hive",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 300,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
      env: { ...process.env, RBEE_DEVICES: "[]" },
    });
    await waitFor(() => (queen.registry.hives.get("small-hive")?.state === "live" ? true : undefined), 30_000);
  });
  afterAll(async () => {
    await hive?.close();
    await queen?.close();
    await rm(models, { recursive: true, force: true });
  });

  it("threads above the cores is a 400 at the API (the job API and the hive's), naming the cores", async () => {
    const cores = availableParallelism();
    for (const threads of [100_000, cores + 1]) {
      const job = await postJson(`${queen.url}/v1/jobs`, {
        operation: { type: "spawn_worker", model: "stories260k", threads },
      });
      expect(job.status, job.text).toBe(400);
      expect(job.body.error.param).toBe("operation.threads");
      const spawn = await postJson(`${hive.url}/v1/workers`, { model: "stories260k", threads }, { token: hive.token });
      expect(spawn.status, spawn.text).toBe(400);
    }
    const named = await postJson(`${queen.url}/v1/jobs`, {
      operation: { type: "spawn_worker", model: "stories260k", threads: cores + 1, hive: "small-hive" },
    });
    expect(named.body.error.message).toBe(
      `threads: ${cores + 1} is more than the ${cores} cores of hive small-hive; use at most ${cores}`,
    );
  });

  it("20,000 embedding inputs get a message that names the limit of 2,048", async () => {
    const r = await postJson(`${queen.url}/v1/embeddings`, {
      model: "stories260k",
      input: Array.from({ length: 20_000 }, () => "hi"),
    });
    expect(r.status, r.text.slice(0, 300)).toBe(400);
    expect(r.body.error.message).toMatch(/input: at most 2048 inputs per request/);
  });

  it("a model file truncated after it was added is reported Failed, and no worker is started for it", async () => {
    const path = join(models, "shrinking.gguf");
    await copyFile(requireStoriesModel(), path);
    const added = await postJson(`${hive.url}/v1/models`, { ref: path }, { token: hive.token });
    expect(added.status, added.text).toBe(200);
    const id = added.body.id as string;
    await truncate(path, 4096);

    const listed = await getJson(`${hive.url}/v1/models`, hive.token);
    const entry = listed.body.models.find((m: { id: string }) => m.id === id);
    expect(entry).toMatchObject({ status: "Failed" });
    expect(entry.error).toMatch(/is 4096 bytes but was \d+ when it was added \(truncated\?\)/);
    // the queen hears it in the next heartbeat, and places nothing for it
    await waitFor(async () => {
      const catalog = await getJson(`${queen.url}/v1/catalog`);
      return catalog.body.models.find((m: { id: string; status: string }) => m.id === id && m.status === "Failed");
    }, 10_000);
    const spawn = await postJson(`${hive.url}/v1/workers`, { model: id }, { token: hive.token });
    expect(spawn.status, spawn.text).toBe(409);
    expect(spawn.body.error.code).toBe("model_not_available");
    const job = await runJob(queen.url, { type: "infer", model: id, prompt: "Once", max_tokens: 2 });
    expect(job.error, JSON.stringify(job.events)).toBeDefined();
    expect(job.error?.message).toMatch(/cannot be served: its status is Failed \(.*truncated\?/);
  });
});
