import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HiveWorkerReport } from "@rbee/contract";
import { postJson, STORIES_GREEDY_PREFIX, STORIES_MODEL, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEarlySpare } from "../src/early-spare.js";
import { FakeQueen } from "./helpers/fake-queen.js";
import { isPidAlive, startTestHive, type TestHive } from "./helpers/test-hive.js";

/** The pids of this process's children that run `rbee worker warm` (Linux: /proc). */
async function sparePids(): Promise<number[]> {
  const { readdir } = await import("node:fs/promises");
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8")).split("\0");
      if (ppid === process.pid && cmdline.includes("warm")) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describe.runIf(process.platform === "linux")(
  "hive: a spare llm worker process, ready before a model is asked for",
  () => {
    let queen: FakeQueen;
    let t: TestHive;
    let workerPid = 0;

    beforeAll(async () => {
      queen = await FakeQueen.start();
      t = await startTestHive({ queenUrl: queen.url, spareWorker: true });
      expect((await t.api.post("/v1/models", { ref: STORIES_MODEL })).status).toBe(200);
    });
    afterAll(async () => {
      await t?.close();
      await queen?.close();
    });

    it("becomes the first CPU worker (same pid, the worker's id and log), and another spare follows", async () => {
      const [spare] = await waitFor(
        async () => {
          const pids = await sparePids();
          return pids.length === 1 ? pids : undefined;
        },
        10_000,
        "a spare worker process",
      );
      // the hive names it, so nothing counts it as a process nobody knows
      expect((await t.api.get("/v1/workers")).body).toEqual({ workers: [], spare_pid: spare });
      const spawned = await t.api.post("/v1/workers", { model: "stories260k", worker_id: "llm-spare", parallel: 1 });
      expect(spawned.status, spawned.text).toBe(201);
      const report = HiveWorkerReport.parse(spawned.body);
      expect(report.pid).toBe(spare);
      workerPid = report.pid as number;
      // it shows what it became (ps, and the hive's identity check of a worker it takes back)
      const cmdline = (await readFile(`/proc/${workerPid}/cmdline`, "utf8")).replaceAll("\0", " ");
      expect(cmdline).toMatch(/^rbee worker serve llm --worker-id=llm-spare /);
      const infer = await postJson(
        `${report.url}/v1/infer`,
        { prompt: "Once upon a time", max_tokens: 12, temperature: 0 },
        { token: t.hive.token },
      );
      expect(infer.status, infer.text).toBe(200);
      expect(infer.body.text.startsWith(STORIES_GREEDY_PREFIX), infer.body.text).toBe(true);
      const log = await readFile(join(t.cacheDir, "logs", "workers", "llm-spare.log"), "utf8");
      expect(log).toContain("hive: starting a spare worker");
      expect(log).toContain('"worker_id":"llm-spare"');
      const next = await waitFor(
        async () => {
          const pids = (await sparePids()).filter((p) => p !== spare);
          return pids.length === 1 ? pids : undefined;
        },
        15_000,
        "a new spare",
      );
      expect(next[0]).not.toBe(spare);
      expect((await t.api.get("/v1/workers")).body.spare_pid).toBe(next[0]);
    });

    it("a spare is stopped with the hive", async () => {
      const spares = (await sparePids()).filter((p) => p !== workerPid);
      expect(spares.length).toBe(1);
      await t.close();
      await waitFor(() => (spares.every((p) => !isPidAlive(p)) ? true : undefined), 10_000, "the spare to exit");
    });
  },
);

describe.runIf(process.platform === "linux")(
  "hive: the spare `rbee hive start` starts before it loads the hive",
  () => {
    const env = { ...process.env, RBEE_SPARE_WORKER: "1" };
    let tmp: string;
    let dirs: { cacheDir: string; configDir: string };
    beforeAll(async () => {
      tmp = await mkdtemp(join(tmpdir(), "rbee-early-spare-"));
      dirs = { cacheDir: join(tmp, "cache"), configDir: join(tmp, "config") };
    });
    afterAll(() => rm(tmp, { recursive: true, force: true }));

    it("is the hive's first spare, and becomes its first CPU worker", async () => {
      const early = startEarlySpare({ ...dirs, tls: false, env });
      expect(early).toBeDefined();
      const pid = early?.child.pid as number;
      const queen = await FakeQueen.start();
      const t = await startTestHive({ queenUrl: queen.url, spareWorker: true, firstSpare: early, ...dirs });
      try {
        expect((await t.api.get("/v1/workers")).body).toEqual({ workers: [], spare_pid: pid });
        expect((await t.api.post("/v1/models", { ref: STORIES_MODEL })).status).toBe(200);
        const spawned = await t.api.post("/v1/workers", { model: "stories260k", worker_id: "llm-early", parallel: 1 });
        expect(spawned.status, spawned.text).toBe(201);
        const report = HiveWorkerReport.parse(spawned.body);
        expect(report.pid).toBe(pid);
        const infer = await postJson(
          `${report.url}/v1/infer`,
          { prompt: "Once upon a time", max_tokens: 8, temperature: 0 },
          { token: t.hive.token },
        );
        expect(infer.status, infer.text).toBe(200);
      } finally {
        await t.close();
        await queen.close();
      }
      await waitFor(() => (isPidAlive(pid) ? undefined : true), 10_000, "the worker to exit with the hive");
    });

    it("is stopped when the hive keeps no spare, and not started where the hive would start none", async () => {
      const early = startEarlySpare({ ...dirs, tls: false, env });
      const pid = early?.child.pid as number;
      const queen = await FakeQueen.start();
      const t = await startTestHive({ queenUrl: queen.url, spareWorker: false, firstSpare: early, ...dirs });
      try {
        await waitFor(() => (isPidAlive(pid) ? undefined : true), 10_000, "the early spare to stop");
        expect((await t.api.get("/v1/workers")).body).toEqual({ workers: [], spare_pid: null });
      } finally {
        await t.close();
        await queen.close();
      }
      expect(startEarlySpare({ ...dirs, tls: false, env: { ...env, RBEE_SPARE_WORKER: "0" } })).toBeUndefined();
      // with TLS the hive gives its workers its certificate: it starts its own spare
      expect(startEarlySpare({ ...dirs, tls: true, env })).toBeUndefined();
    });
  },
);
