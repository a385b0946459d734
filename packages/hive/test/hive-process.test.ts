import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ChildHandle, postJson, STORIES_MODEL, waitFor } from "@rbee/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hiveApi, isPidAlive, randomPortBase } from "./helpers/test-hive.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/run-hive.mjs", import.meta.url));

/** A hive as a real process (runHive from the built package), with its log on stdout. */
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

describe("hive as a process (runHive): SIGKILL, adoption after a restart, the orphan rule, SIGTERM", () => {
  let tmp: string;
  let options: Record<string, unknown>;
  const children: ChildHandle[] = [];
  const workerPids: number[] = [];
  const start = (extra: Record<string, unknown> = {}) => {
    const child = startHiveProcess({ ...options, ...extra });
    children.push(child);
    return child;
  };
  const spawnWorker = async (url: string, workerId: string) => {
    const token = (await readFile(join(tmp, "config", "cluster-token"), "utf8")).trim();
    const api = hiveApi(url, token);
    expect((await api.post("/v1/models", { ref: STORIES_MODEL })).status).toBe(200);
    const r = await api.post("/v1/workers", { model: "stories260k", worker_id: workerId });
    expect(r.status, r.text).toBe(201);
    workerPids.push(r.body.pid);
    return { api, token, worker: r.body as { pid: number; url: string } };
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), "rbee-hive-process-"));
    options = {
      port: 0,
      hiveId: "proc-hive",
      cacheDir: join(tmp, "cache"),
      configDir: join(tmp, "config"),
      queenUrl: "http://127.0.0.1:1",
      heartbeatIntervalMs: 300,
      workerOrphanTimeoutMs: 4_000,
      workerShutdownGraceMs: 2_000,
      workerPortStart: randomPortBase(),
    };
  });
  afterEach(async () => {
    for (const child of children.splice(0)) await child.stop(2000);
  });
  afterAll(async () => {
    for (const pid of workerPids) if (isPidAlive(pid)) process.kill(pid, "SIGKILL");
    await rm(tmp, { recursive: true, force: true });
  });

  it("workers outlive a hive killed with SIGKILL; a hive restarted in time adopts them; SIGTERM then stops them and exits 0", async () => {
    const first = start();
    const { url, port } = await hiveReady(first);
    const { api, token, worker } = await spawnWorker(url, "llm-survivor");
    first.kill("SIGKILL");
    expect(await first.waitForExit(5000)).toEqual({ code: null, signal: "SIGKILL" });
    expect(isPidAlive(worker.pid)).toBe(true);

    const second = start({ port });
    await hiveReady(second);
    const adopted = await waitFor(
      async () =>
        (await api.get("/v1/workers")).body.workers?.find(
          (w: { worker_id: string; pid: number; status: string }) =>
            w.worker_id === "llm-survivor" && w.pid === worker.pid && w.status === "Ready",
        ),
      10_000,
      "the restarted hive to adopt the worker",
    );
    expect(adopted).toMatchObject({ adopted: true, url: worker.url });
    const infer = await postJson(`${worker.url}/v1/infer`, { prompt: "Once", max_tokens: 3 }, { token });
    expect(infer.status).toBe(200);

    second.kill("SIGTERM");
    expect(await second.waitForExit(20_000)).toEqual({ code: 0, signal: null });
    expect(isPidAlive(worker.pid)).toBe(false);
    expect(second.stdout).toMatch(/"msg":"hive stopped"/);
  });

  it("the workers of a hive killed with SIGKILL exit on their own by the orphan rule", async () => {
    const hive = start({ workerOrphanTimeoutMs: 2_000 });
    const { url } = await hiveReady(hive);
    const { worker } = await spawnWorker(url, "llm-orphan");
    hive.kill("SIGKILL");
    await hive.waitForExit(5000);
    await waitFor(() => (isPidAlive(worker.pid) ? undefined : true), 15_000, "the orphaned worker to exit");
    const log = await readFile(join(tmp, "cache", "logs", "workers", "llm-orphan.log"), "utf8");
    expect(log).toMatch(/"msg":"heartbeat target unreachable; shutting down"/);
    expect(log).toMatch(/"msg":"stopped"/);
  });

  it("a hive that cannot start says why on stderr and exits 1", async () => {
    const blocker = start();
    const { port } = await hiveReady(blocker);
    const second = start({ port });
    expect(await second.waitForExit(15_000)).toEqual({ code: 1, signal: null });
    expect(second.stderr).toMatch(/^rbee hive: port \d+ on 127\.0\.0\.1 is in use \(is a hive already running\?\)/);
  });
});
