import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ChildHandle, postJson, STORIES_MODEL, waitFor } from "@rbee/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hiveApi, isPidAlive, randomPortBase } from "./helpers/test-hive.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/run-hive.mjs", import.meta.url));
const INTERVAL_MS = 300;
/** Longer than 6 intervals (lost) and than the stale/lost clocks together, well under the orphan rule. */
const FROZEN_MS = 5_000;

function startHiveProcess(options: Record<string, unknown>): ChildHandle {
  return new ChildHandle(process.execPath, [FIXTURE], {
    env: { HIVE_OPTIONS: JSON.stringify(options), RBEE_DEVICES: "[]", RBEE_LOG_LEVEL: "info" },
  });
}

async function hiveReady(child: ChildHandle): Promise<{ url: string; port: number }> {
  const match = await child.waitForLine(/^\{.*"msg":"hive ready".*\}$/m, 30_000);
  const url = (JSON.parse(match[0]) as { url: string }).url;
  return { url, port: Number(new URL(url).port) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Listed {
  worker_id: string;
  pid: number | null;
  status: string;
  restarts: number;
  adopted: boolean;
  stale: boolean;
}

/**
 * Issue 15, defect 1: a hive frozen (SIGSTOP) for longer than the lost threshold must not kill its
 * healthy workers when it resumes; the silence was its own.
 */
describe("a hive frozen with SIGSTOP keeps its workers when it resumes (issue 15: defect 1)", () => {
  let tmp: string;
  let options: Record<string, unknown>;
  const children: ChildHandle[] = [];
  const workerPids: number[] = [];

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "rbee-hive-freeze-"));
    options = {
      port: 0,
      hiveId: "frozen-hive",
      cacheDir: join(tmp, "cache"),
      configDir: join(tmp, "config"),
      queenUrl: "http://127.0.0.1:1",
      heartbeatIntervalMs: INTERVAL_MS,
      workerOrphanTimeoutMs: 60_000,
      workerShutdownGraceMs: 2_000,
      workerPortStart: randomPortBase(),
    };
  });
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitInfo === undefined) child.kill("SIGCONT");
      await child.stop(5000);
    }
  });
  afterAll(async () => {
    for (const pid of workerPids) if (isPidAlive(pid)) process.kill(pid, "SIGKILL");
    await rm(tmp, { recursive: true, force: true });
  });

  const start = (extra: Record<string, unknown> = {}) => {
    const child = startHiveProcess({ ...options, ...extra });
    children.push(child);
    return child;
  };

  /** Freezes the hive process for FROZEN_MS, resumes it, and gives it 10 intervals to look at its workers. */
  async function freeze(hive: ChildHandle): Promise<void> {
    hive.kill("SIGSTOP");
    await sleep(FROZEN_MS);
    hive.kill("SIGCONT");
    await sleep(10 * INTERVAL_MS);
  }

  it("a worker it spawned keeps its pid and stays Ready; nothing is killed or restarted", async () => {
    const hive = start();
    const { url } = await hiveReady(hive);
    const token = (await readFile(join(tmp, "config", "cluster-token"), "utf8")).trim();
    const api = hiveApi(url, token);
    expect((await api.post("/v1/models", { ref: STORIES_MODEL })).status).toBe(200);
    const r = await api.post("/v1/workers", { model: "stories260k", worker_id: "llm-healthy" });
    expect(r.status, r.text).toBe(201);
    const worker = r.body as { pid: number; url: string };
    workerPids.push(worker.pid);

    await freeze(hive);

    const listed = (await api.get("/v1/workers")).body.workers as Listed[];
    expect(listed).toEqual([
      expect.objectContaining({ worker_id: "llm-healthy", pid: worker.pid, status: "Ready", restarts: 0 }),
    ]);
    expect(isPidAlive(worker.pid)).toBe(true);
    expect(hive.stdout).not.toMatch(/"msg":"worker lost: killing it"/);
    expect(hive.stdout).toMatch(/"msg":"this hive was not running/);
    const infer = await postJson(`${worker.url}/v1/infer`, { prompt: "Once", max_tokens: 3 }, { token });
    expect(infer.status, infer.text).toBe(200);
  });

  it("a worker it adopted from an earlier hive is not Failed after the freeze", async () => {
    const first = start();
    const { url, port } = await hiveReady(first);
    const token = (await readFile(join(tmp, "config", "cluster-token"), "utf8")).trim();
    const api = hiveApi(url, token);
    expect((await api.post("/v1/models", { ref: STORIES_MODEL })).status).toBe(200);
    const r = await api.post("/v1/workers", { model: "stories260k", worker_id: "llm-adopted" });
    expect(r.status, r.text).toBe(201);
    const worker = r.body as { pid: number };
    workerPids.push(worker.pid);
    first.kill("SIGKILL");
    await first.waitForExit(5000);

    const second = start({ port });
    await hiveReady(second);
    await waitFor(
      async () =>
        ((await api.get("/v1/workers")).body.workers as Listed[]).find((w) => w.adopted && w.pid === worker.pid),
      15_000,
      "the second hive to adopt the worker",
    );

    await freeze(second);

    const listed = (await api.get("/v1/workers")).body.workers as Listed[];
    expect(listed).toEqual([
      expect.objectContaining({ worker_id: "llm-adopted", pid: worker.pid, status: "Ready", adopted: true }),
    ]);
    expect(isPidAlive(worker.pid)).toBe(true);
    expect(second.stdout).not.toMatch(/"msg":"worker lost: killing it"/);
  });
});
