import { existsSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { STORIES_MODEL } from "@rbee/testing";
import { afterEach, describe, expect, it } from "vitest";
import { startTestHive, type TestHive } from "./helpers/test-hive.js";

describe("hive: worker records (what a restarted hive takes its workers back from)", () => {
  let t: TestHive | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it("a running worker has a record with its model file, pid and keep-alive; stopping it removes the record", async () => {
    t = await startTestHive();
    expect((await t.api.post("/v1/models", { ref: STORIES_MODEL })).status).toBe(200);
    const r = await t.api.post("/v1/workers", {
      model: "stories260k",
      worker_id: "llm-kept",
      keep_alive_ms: 420_000,
      memory_bytes: 12_345_678,
    });
    expect(r.status, r.text).toBe(201);
    const file = join(t.cacheDir, "run", "workers", "llm-kept.json");
    const record = JSON.parse(await readFile(file, "utf8"));
    expect(record.worker).toMatchObject({
      id: "llm-kept",
      model_id: "stories260k",
      model_path: STORIES_MODEL,
      pid: r.body.pid,
      port: r.body.port,
      keep_alive_ms: 420_000,
      memory_bytes: 12_345_678,
      restarts: 0,
    });
    expect((await t.api.delete("/v1/workers/llm-kept")).status).toBe(200);
    expect(existsSync(file)).toBe(false);
    // the worker catalog's folder holds worker types, not running workers
    expect(existsSync(join(t.cacheDir, "workers", "llm-kept"))).toBe(false);
  });

  it("records of workers that are gone, or that cannot be read, are dropped when a hive starts", async () => {
    const first = await startTestHive();
    const workers = join(first.cacheDir, "run", "workers");
    await first.hive.close();
    const record = (id: string, pid: number) => ({
      worker: {
        id,
        worker_type: "llm",
        model_id: "stories260k",
        model_path: STORIES_MODEL,
        device: "cpu",
        port: 9399,
        pid,
        url: "http://127.0.0.1:9399",
        restarts: 0,
        started_at: new Date().toISOString(),
      },
      created_at: new Date().toISOString(),
      updated_at: new Date().toISOString(),
    });
    // this test process is alive, but it is not that worker: its command line does not name it
    await mkdir(workers, { recursive: true });
    for (const [id, body] of [
      ["llm-gone", JSON.stringify(record("llm-gone", 2 ** 22 + 17))],
      ["llm-impostor", JSON.stringify(record("llm-impostor", process.pid))],
      ["llm-garbage", "{not json"],
    ]) {
      await writeFile(join(workers, `${id}.json`), body as string);
    }
    t = await startTestHive({ cacheDir: first.cacheDir, configDir: first.configDir });
    expect(t.hive.workers()).toEqual([]);
    for (const id of ["llm-gone", "llm-impostor", "llm-garbage"])
      expect(existsSync(join(workers, `${id}.json`))).toBe(false);
    await rm(first.tmp, { recursive: true, force: true });
  });
});
