import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  ErrorBody,
  HeartbeatReply,
  HiveHeartbeat,
  HiveModel,
  PROTOCOL_VERSION,
  type WorkerHeartbeat,
} from "@rbee/contract";
import { STORIES_MODEL } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiReply, startTestHive, type TestHive } from "./helpers/test-hive.js";

const SIMULATED = JSON.stringify([
  { id: "cuda:0", name: "RTX 4090 (simulated)", memory_total: 25_769_803_776, memory_used: 1_073_741_824 },
  { id: "cuda:1", memory_total: 12_884_901_888 },
]);

function errorOf(r: ApiReply, status: number) {
  expect(r.status, r.text).toBe(status);
  return ErrorBody.parse(r.body).error;
}

function heartbeat(fields: Partial<WorkerHeartbeat> = {}): WorkerHeartbeat {
  return {
    protocol_version: PROTOCOL_VERSION,
    worker_id: "llm-test",
    status: "Ready",
    model: "stories260k",
    device: "cpu",
    vram_used: 0,
    vram_total: 1,
    requests_total: 0,
    tokens_generated: 0,
    uptime_seconds: 1,
    last_request_at: null,
    ...fields,
  };
}

describe("hive HTTP API (no workers started)", () => {
  let t: TestHive;

  beforeAll(async () => {
    t = await startTestHive({ env: { RBEE_DEVICES: SIMULATED } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("GET /health answers without a token; every other route wants the cluster token", async () => {
    const health = await t.api.get("/health", null);
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: "Ready", hive_id: "test-hive" });
    const routes: Array<[string, string]> = [
      ["GET", "/v1/info"],
      ["GET", "/v1/workers"],
      ["POST", "/v1/workers"],
      ["DELETE", "/v1/workers/x"],
      ["GET", "/v1/workers/x/logs"],
      ["GET", "/v1/models"],
      ["POST", "/v1/models"],
      ["POST", "/v1/worker-heartbeat"],
      ["GET", "/metrics"],
    ];
    for (const [method, path] of routes) {
      const call = method === "GET" ? t.api.get : method === "DELETE" ? t.api.delete : t.api.post;
      const none = method === "POST" ? await t.api.post(path, {}, null) : await call(path, null);
      expect(errorOf(none, 401).message, `${method} ${path}`).toMatch(/missing cluster token/);
      const wrong = method === "POST" ? await t.api.post(path, {}, "not-the-token") : await call(path, "not-the-token");
      expect(errorOf(wrong, 401).message, `${method} ${path}`).toMatch(/invalid cluster token/);
    }
  });

  it("the cluster token is created on first start, mode 0600, in the config dir", async () => {
    const { stat, readFile } = await import("node:fs/promises");
    const file = join(t.configDir, "cluster-token");
    expect((await readFile(file, "utf8")).trim()).toBe(t.hive.token);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it("GET /v1/info is the hive heartbeat, with the simulated devices of RBEE_DEVICES (simulated inventory)", async () => {
    const r = await t.api.get("/v1/info");
    expect(r.status).toBe(200);
    const info = HiveHeartbeat.parse(r.body);
    expect(info).toMatchObject({
      protocol_version: PROTOCOL_VERSION,
      hive_id: "test-hive",
      url: t.hive.url,
      interval_ms: 500,
      workers: [],
      models: [],
    });
    expect(info.devices.map((d) => d.id)).toEqual(["cpu", "cuda:0", "cuda:1"]);
    expect(info.devices[1]).toMatchObject({
      name: "RTX 4090 (simulated)",
      simulated: true,
      memory_free: 24_696_061_952,
    });
    expect(info.devices[0]?.memory_total).toBeGreaterThan(0);
  });

  it("spawning on a device that is not in the inventory is refused with 400 device_not_found (simulated inventory)", async () => {
    await t.api.post("/v1/models", { ref: STORIES_MODEL });
    const e = errorOf(await t.api.post("/v1/workers", { model: "stories260k", device: "cuda:7" }), 400);
    expect(e.code).toBe("device_not_found");
    expect(e.param).toBe("device");
    expect(e.message).toMatch(/cuda:7.*cpu, cuda:0, cuda:1/);
    const malformed = errorOf(await t.api.post("/v1/workers", { model: "stories260k", device: "gpu0" }), 400);
    expect(malformed.param).toBe("device");
    expect(t.hive.workers()).toEqual([]);
  });

  it("POST /v1/models registers a local GGUF file; GET /v1/models lists the catalog", async () => {
    const r = await t.api.post("/v1/models", { ref: STORIES_MODEL });
    expect(r.status, r.text).toBe(200);
    expect(HiveModel.parse(r.body)).toMatchObject({ id: "stories260k", status: "Available", path: STORIES_MODEL });
    expect((await t.api.post("/v1/models", { ref: "STORIES260K" })).body.id).toBe("stories260k");
    const list = await t.api.get("/v1/models");
    expect(list.body.models.map((m: HiveModel) => m.id)).toEqual(["stories260k"]);
  });

  it("refuses bad model references and spawn requests with 4xx that say what is wrong", async () => {
    const notGguf = join(t.tmp, "notes.gguf");
    await writeFile(notGguf, "just text");
    expect(errorOf(await t.api.post("/v1/models", { ref: notGguf }), 400).message).toMatch(/not a GGUF model/);
    const missing = errorOf(await t.api.post("/v1/models", { ref: join(t.tmp, "nope.gguf") }), 404);
    expect(missing.code).toBe("model_not_found");
    const outside = errorOf(await t.api.post("/v1/models", { ref: "owner/repo:../../etc/passwd" }), 400);
    expect(outside.message).toMatch(/is not a model reference/);
    expect(errorOf(await t.api.post("/v1/models", { ref: "" }), 400).param).toBe("ref");
    expect(errorOf(await t.api.post("/v1/models", { ref: "x", extra: 1 }), 400).param).toBe("extra");

    expect(errorOf(await t.api.post("/v1/workers", { model: "no-such-model" }), 404).code).toBe("model_not_found");
    expect(errorOf(await t.api.post("/v1/workers", '{"model": '), 400).message).toMatch(/not valid JSON/);
    expect(errorOf(await t.api.post("/v1/workers", { model: "stories260k", parallel: 0 }), 400).param).toBe("parallel");
    const badId = errorOf(await t.api.post("/v1/workers", { model: "stories260k", worker_id: "../../etc" }), 400);
    expect(badId.param).toBe("worker_id");
    expect(errorOf(await t.api.post("/v1/workers", { model: "stories260k", worker_type: "sd" }), 400).param).toBe(
      "worker_type",
    );
  });

  it("unknown workers and their logs answer 404", async () => {
    expect(errorOf(await t.api.delete("/v1/workers/nobody"), 404).code).toBe("worker_not_found");
    expect(errorOf(await t.api.get("/v1/workers/nobody/logs"), 404).code).toBe("worker_not_found");
    expect(errorOf(await t.api.get("/v1/workers/..%2F..%2Fetc/logs"), 404).code).toBe("worker_not_found");
    expect(errorOf(await t.api.get("/v1/workers/x/logs?tail=0"), 400).param).toBe("tail");
  });

  it("worker heartbeats: acknowledged with commands; a wrong protocol version is refused naming who upgrades", async () => {
    // a worker that is stopping is not adopted, but its heartbeat is acknowledged
    const r = await t.api.post("/v1/worker-heartbeat", heartbeat({ worker_id: "llm-going", status: "Stopping" }));
    expect(r.status, r.text).toBe(200);
    expect(HeartbeatReply.parse(r.body)).toEqual({ ack: true, commands: [] });
    expect(t.hive.workers()).toEqual([]);
    const old = errorOf(await t.api.post("/v1/worker-heartbeat", heartbeat({ protocol_version: 99 })), 400);
    expect(old.message).toMatch(/protocol 99 .* speaks 1; upgrade this hive/);
    expect(errorOf(await t.api.post("/v1/worker-heartbeat", { worker_id: "x" }), 400).message).toMatch(/status/);
  });

  it("GET /metrics serves the hive's Prometheus metrics", async () => {
    const r = await t.api.get("/metrics");
    expect(r.status).toBe(200);
    expect(r.text).toMatch(/^rbee_hive_workers\{status="Ready"\} 0$/m);
    expect(r.text).toMatch(/^# TYPE rbee_hive_worker_spawns_total counter$/m);
    expect(r.text).toMatch(/^# TYPE rbee_hive_worker_restarts_total counter$/m);
    expect(r.text).toMatch(/^# TYPE rbee_hive_worker_crashes_total counter$/m);
    expect(r.text).toMatch(/^rbee_hive_worker_heartbeats_total \d+$/m);
  });

  it("after close(), GET /health is refused and new spawns are not taken", async () => {
    const extra = await startTestHive();
    expect(extra.hive.devices.current().map((d) => d.id)).toEqual(["cpu"]);
    const api = extra.api;
    await extra.close();
    await expect(api.get("/health", null)).rejects.toThrow();
    await expect(
      extra.hive.spawnWorker({ model: "stories260k", device: "cpu", worker_type: "llm" }),
    ).rejects.toMatchObject({ code: "shutting_down", statusCode: 503 });
  });
});
