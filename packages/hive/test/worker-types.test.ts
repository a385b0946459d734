import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile, rename, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { ArtifactMetadata, HiveWorkerTypes, type InstalledWorkerType } from "@rbee/contract";
import { freePort, isPidAlive } from "@rbee/server-kit";
import { type ChildHandle, describeWorkerConformance, postJson, startRbee, tempRbeeDirs, waitFor } from "@rbee/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hiveApi, randomPortBase, startTestHive, type TestHive } from "./helpers/test-hive.js";

const NODE_LLAMA_CPP_VERSION = (
  JSON.parse(
    readFileSync(join(dirname(createRequire(import.meta.url).resolve("node-llama-cpp")), "../package.json"), "utf8"),
  ) as { version: string }
).version;

describe("hive: the worker catalog (worker types, what they run with, where they run)", () => {
  let t: TestHive;
  beforeAll(async () => {
    t = await startTestHive();
  });
  afterAll(async () => {
    await t.close();
  });

  it("GET /v1/worker-types lists every registered type with its engines; each has a metadata.json in the catalog format", async () => {
    const r = await t.api.get("/v1/worker-types");
    expect(r.status, r.text).toBe(200);
    const listing = HiveWorkerTypes.parse(r.body);
    expect(listing.hive_id).toBe("test-hive");
    const llm = listing.worker_types.find((w) => w.id === "llm") as InstalledWorkerType;
    expect(llm).toMatchObject({
      status: "Available",
      artifact: "gguf",
      capabilities: ["text-generation", "chat", "json_schema", "tools", "embeddings"],
    });
    expect(llm.runs_on).toContain("cpu");
    // the llama.cpp builds node-llama-cpp brought for this machine, with their version and path
    const cpuBuild = llm.engines.find((e) => e.backend === "cpu");
    expect(cpuBuild).toMatchObject({ id: "node-llama-cpp", source: "bundled", status: "ok" });
    expect(cpuBuild?.version).toBe(NODE_LLAMA_CPP_VERSION);
    expect(existsSync(cpuBuild?.path ?? "")).toBe(true);
    const echo = listing.worker_types.find((w) => w.id === "echo");
    expect(echo).toMatchObject({ status: "Available", artifact: "none", runs_on: ["cpu"] });

    for (const id of ["llm", "echo"]) {
      const file = join(t.cacheDir, "workers", id, "metadata.json");
      const meta = ArtifactMetadata.parse(JSON.parse(await readFile(file, "utf8")));
      expect(meta.artifact).toMatchObject({ id, kind: "worker", status: "Available" });
    }
    // the hive's heartbeat carries the same catalog
    const info = await t.hive.info();
    expect(info.worker_types?.map((w) => w.id)).toEqual(listing.worker_types.map((w) => w.id));
  });

  it("a type the hive does not know is a 400 that lists the ones it has; nothing is started", async () => {
    const r = await t.api.post("/v1/workers", { worker_type: "sglang", model: "stories260k" });
    expect(r.status, r.text).toBe(400);
    expect(r.body.error.code).toBe("unknown_worker_type");
    expect(r.body.error.message).toMatch(/unknown worker type 'sglang'.*llm, llama-server, echo/);
    const bad = await t.api.post("/v1/workers", { worker_type: "Not A Type", model: "x" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe("worker_type");
    expect(t.hive.workers()).toEqual([]);
  });

  it("the echo example is spawned like any worker: it serves the model name it is given, with its type's capabilities", async () => {
    const r = await t.api.post("/v1/workers", { worker_type: "echo", model: "Parrot-1", worker_id: "echo-parrot" });
    expect(r.status, r.text).toBe(201);
    expect(r.body).toMatchObject({
      worker_id: "echo-parrot",
      worker_type: "echo",
      model: "parrot-1",
      capabilities: ["text-generation", "chat"],
    });
    const reply = await postJson(
      `${r.body.url}/v1/infer`,
      { prompt: "the quick brown fox", max_tokens: 2, model: "parrot-1" },
      { token: t.hive.token },
    );
    expect(reply.status, reply.text).toBe(200);
    expect(reply.body.text).toBe("the quick");
    const bad = await t.api.post("/v1/workers", { worker_type: "echo", model: "../../etc" });
    expect(bad.status, bad.text).toBe(400);
    expect((await t.api.delete("/v1/workers/echo-parrot")).status).toBe(200);
  });
});

// The echo example, spawned through a hive, passes the same contract suite as when run by hand.
let spawned: { t: TestHive; url: string } | undefined;
describeWorkerConformance("the echo example spawned by a hive", {
  start: async () => {
    const t = await startTestHive();
    const r = await t.api.post("/v1/workers", { worker_type: "echo", model: "echo", worker_id: "echo-conformance" });
    if (r.status !== 201) throw new Error(`spawn failed: ${r.text}`);
    spawned = { t, url: r.body.url };
    const pid = r.body.pid as number;
    return {
      url: r.body.url,
      model: "echo",
      token: t.hive.token,
      prompt: "Once upon a time there was a worker",
      terminate: async () => {
        process.kill(pid, "SIGTERM");
        await waitFor(() => (isPidAlive(pid) ? undefined : true), 20_000, "the echo worker to exit");
        // the hive saw it stop on its own (exit code 0), and forgot it
        const w = await waitFor(
          () => (t.hive.workers().length === 0 ? true : undefined),
          10_000,
          "the hive to forget the stopped worker",
        );
        return { code: w ? 0 : 1, signal: null };
      },
    };
  },
  stop: async () => {
    await spawned?.t.close();
  },
  skip: { json_schema: "the echo worker has no grammar engine", stop: "the echo worker ignores stop strings" },
});

describe("hive: records of running workers live under run/, apart from the worker catalog", () => {
  const children: ChildHandle[] = [];
  const pids: number[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) await c.stop(20_000);
    for (const pid of pids.splice(0)) if (isPidAlive(pid)) process.kill(pid, "SIGKILL");
  });

  it("a hive started over the old layout (records in workers/<id>/metadata.json) moves them and takes its workers back", async () => {
    const dirs = tempRbeeDirs("hive-layout");
    const port = await freePort();
    const start = async () => {
      const child = startRbee(["hive", "start", "--foreground", "--port", String(port), "--hive-id", "layout"], {
        env: {
          ...dirs.env,
          RBEE_QUEEN_URL: "http://127.0.0.1:1",
          RBEE_WORKER_PORT_START: String(randomPortBase()),
          RBEE_DEVICES: "[]",
          RBEE_LOG_LEVEL: "info",
        },
      });
      children.push(child);
      await child.waitForLine(/"msg":"hive ready"/, 60_000);
      return child;
    };
    const first = await start();
    const token = (await readFile(join(dirs.configDir, "cluster-token"), "utf8")).trim();
    const api = hiveApi(`http://127.0.0.1:${port}`, token);
    const spawned = await api.post("/v1/workers", { worker_type: "echo", model: "echo", worker_id: "echo-kept" });
    expect(spawned.status, spawned.text).toBe(201);
    const pid = spawned.body.pid as number;
    pids.push(pid);
    const record = join(dirs.cacheDir, "run", "workers", "echo-kept.json");
    expect(JSON.parse(await readFile(record, "utf8")).worker).toMatchObject({ id: "echo-kept", pid });

    first.kill("SIGKILL");
    await first.waitForExit(10_000);
    expect(isPidAlive(pid)).toBe(true);
    // put the record where a hive before the worker catalog kept it
    const old = join(dirs.cacheDir, "workers", "echo-kept");
    await mkdir(old, { recursive: true });
    await rename(record, join(old, "metadata.json"));

    const second = await start();
    expect(second.stdout).toMatch(/"msg":"moved a worker record out of the worker catalog"/);
    const workers = (await api.get("/v1/workers")).body.workers as Array<{ worker_id: string; pid: number }>;
    expect(workers).toMatchObject([{ worker_id: "echo-kept", pid }]);
    expect(existsSync(record)).toBe(true);
    expect(existsSync(old)).toBe(false);
    // the catalog's own entries are untouched by the move
    expect(existsSync(join(dirs.cacheDir, "workers", "llm", "metadata.json"))).toBe(true);
    expect((await api.delete("/v1/workers/echo-kept")).status).toBe(200);
    await rm(dirs.root, { recursive: true, force: true });
  }, 120_000);
});
