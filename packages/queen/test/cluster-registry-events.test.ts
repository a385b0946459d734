import type { ClusterEvent, HiveHeartbeat, HiveModel, HiveWorkerReport } from "@rbee/contract";
import { ClusterRegistry } from "@rbee/queen";
import { describe, expect, it } from "vitest";

/**
 * The registry's own methods change its entries and say so (the events of `GET /v1/events`), with
 * a fake clock. The same events through a real queen and hive: cluster-events.test.ts.
 */
const INTERVAL = 1000;

const stories: HiveModel = {
  id: "stories260k",
  name: "stories260K",
  size_bytes: 1,
  status: "Available",
  path: "/m/stories260K.gguf",
};

function report(id: string): HiveWorkerReport {
  return {
    worker_id: id,
    worker_type: "llm",
    model: "stories260k",
    device: "cpu",
    url: "http://127.0.0.1:9301",
    port: 9301,
    pid: 123,
    status: "Ready",
    restarts: 0,
    last_exit: null,
    started_at: new Date(0).toISOString(),
    heartbeat_age_ms: 0,
    heartbeat: null,
  };
}

function beat(o: { workers?: HiveWorkerReport[]; models?: HiveModel[]; stopping?: boolean } = {}): HiveHeartbeat {
  return {
    protocol_version: 1,
    hive_id: "h1",
    url: "http://127.0.0.1:7835",
    version: "0.1.0",
    started_at: new Date(0).toISOString(),
    interval_ms: INTERVAL,
    devices: [],
    workers: o.workers ?? [],
    models: o.models ?? [stories],
    ...(o.stopping ? { stopping: true } : {}),
  };
}

function registry() {
  const reg = new ClusterRegistry({ defaultKeepAliveMs: 300_000, heartbeatIntervalMs: INTERVAL });
  const events: ClusterEvent[] = [];
  reg.subscribe((e) => events.push(e));
  return { reg, events, types: () => events.map((e) => e.type) };
}

/** The llm worker type as a hive lists it in its catalog. */
function llmType(status: "Available" | "Failed" = "Available") {
  return {
    id: "llm",
    description: "llm",
    version: "1.0.0",
    capabilities: ["text-generation" as const],
    device_kinds: ["cpu" as const],
    artifact: "gguf" as const,
    status,
    engines: [],
  };
}

describe("ClusterRegistry: changes through its methods, each an event", () => {
  it("draining and stopping a worker: one event per change, none for a repeat", () => {
    const { reg, events } = registry();
    reg.ingestHiveHeartbeat(beat({ workers: [report("w1")] }), 0);
    const w = reg.workers.get("w1");
    if (w === undefined) throw new Error("no worker");
    events.length = 0;
    reg.setDraining(w, true, "making room for other", 10);
    reg.setDraining(w, true, "making room for other", 11);
    expect(reg.routableWorkers("stories260k")).toEqual([]);
    expect(reg.toClusterWorker(w, 12)).toMatchObject({ draining: true, routable: false });
    reg.setDraining(w, false, "given up", 13);
    expect(reg.routableWorkers("stories260k").map((x) => x.id)).toEqual(["w1"]);
    reg.setStopping(w, true, "stopped by request", 14);
    expect(reg.toClusterWorker(w, 15)).toMatchObject({ stopping: true, routable: false });
    expect(events).toEqual([
      { type: "worker_draining", at: 10, worker_id: "w1", draining: true, reason: "making room for other" },
      { type: "worker_draining", at: 13, worker_id: "w1", draining: false, reason: "given up" },
      { type: "worker_stopping", at: 14, worker_id: "w1", stopping: true, reason: "stopped by request" },
    ]);
  });

  it("a worker that did not answer counts as Starting until its hive reports it again, and says so", () => {
    const { reg, events } = registry();
    reg.ingestHiveHeartbeat(beat({ workers: [report("w1")] }), 0);
    const w = reg.workers.get("w1");
    if (w === undefined) throw new Error("no worker");
    events.length = 0;
    reg.workerUnanswered(w, 5);
    reg.workerUnanswered(w, 6);
    expect(reg.routableWorkers("stories260k")).toEqual([]);
    expect(events).toEqual([{ type: "worker_status", at: 5, worker_id: "w1", status: "Starting", from: "Ready" }]);
    reg.ingestHiveHeartbeat(beat({ workers: [report("w1")] }), 1000);
    expect(reg.routableWorkers("stories260k").map((x) => x.id)).toEqual(["w1"]);
  });

  it("a hive's heartbeat that says it stops: hive_stopping, and again when it runs once more", () => {
    const { reg, events } = registry();
    reg.ingestHiveHeartbeat(beat(), 0);
    reg.ingestHiveHeartbeat(beat({ stopping: true }), 1000);
    reg.ingestHiveHeartbeat(beat({ stopping: true }), 1001);
    reg.ingestHiveHeartbeat(beat(), 2000);
    expect(events.filter((e) => e.type === "hive_stopping")).toEqual([
      { type: "hive_stopping", at: 1000, hive_id: "h1", stopping: true },
      { type: "hive_stopping", at: 2000, hive_id: "h1", stopping: false },
    ]);
  });

  it("catalog changes are events; heartbeats that repeat the catalog are not", () => {
    const { reg, events, types } = registry();
    reg.ingestHiveHeartbeat(beat({ models: [] }), 0);
    reg.ingestHiveHeartbeat(beat({ models: [] }), 1000);
    expect(types()).toEqual(["hive_joined"]);
    reg.ingestHiveHeartbeat(beat(), 2000);
    reg.ingestHiveHeartbeat(beat(), 3000);
    const llm = llmType();
    reg.setWorkerTypes("h1", [llm], 3500);
    reg.setWorkerTypes("h1", [llm], 3600);
    expect(events.filter((e) => e.type === "hive_catalog").map((e) => [e.at, e.models.length])).toEqual([
      [2000, 1],
      [3500, 1],
    ]);
    expect(events.at(-1)).toMatchObject({ type: "hive_catalog", worker_types: [{ id: "llm" }] });
  });

  it("heartbeats whose worker types differ only in when they were last looked at are not a catalog change", () => {
    const { reg, events } = registry();
    const llm = (updated_at: string, status: "Available" | "Failed" = "Available") => ({
      ...llmType(status),
      updated_at,
    });
    const typed = (t: ReturnType<typeof llm>) => ({ ...beat(), worker_types: [t] });
    reg.ingestHiveHeartbeat(typed(llm("2026-12-04T10:00:00.000Z")), 0);
    reg.ingestHiveHeartbeat(typed(llm("2026-12-04T10:01:00.000Z")), 1000);
    reg.ingestHiveHeartbeat(typed(llm("2026-12-04T10:02:00.000Z")), 2000);
    expect(events.filter((e) => e.type === "hive_catalog")).toEqual([]);
    // a real change is one
    reg.ingestHiveHeartbeat(typed(llm("2026-12-04T10:03:00.000Z", "Failed")), 3000);
    expect(events.filter((e) => e.type === "hive_catalog").map((e) => [e.at, e.worker_types?.[0]?.status])).toEqual([
      [3000, "Failed"],
    ]);
  });

  it("a model a hive just said it holds stays in its catalog while heartbeats already on their way do not list it", () => {
    const { reg, events } = registry();
    reg.ingestHiveHeartbeat(beat({ models: [] }), 0);
    const fetched: HiveModel = { ...stories, id: "tiny", path: "/m/tiny.gguf" };
    reg.modelProvisioned("h1", fetched, 100);
    expect(reg.findModel("tiny").map((h) => h.hive.id)).toEqual(["h1"]);
    // a heartbeat sent before the hive had it
    reg.ingestHiveHeartbeat(beat({ models: [] }), 1000);
    expect(reg.findModel("tiny").map((h) => h.hive.id)).toEqual(["h1"]);
    expect(events.filter((e) => e.type === "hive_catalog")).toHaveLength(1);
    // once its heartbeats list it, they are the word; after 30 s without, it is forgotten
    reg.ingestHiveHeartbeat(beat({ models: [fetched] }), 2000);
    reg.ingestHiveHeartbeat(beat({ models: [] }), 3000);
    expect(reg.findModel("tiny")).toEqual([]);
    reg.modelProvisioned("h1", fetched, 4000);
    reg.ingestHiveHeartbeat(beat({ models: [] }), 40_000);
    expect(reg.findModel("tiny")).toEqual([]);
    // removed on the queen's request: gone at once, and an event says so
    reg.modelProvisioned("h1", fetched, 41_000);
    reg.forgetModel("h1", "tiny", 41_500);
    expect(reg.findModel("tiny")).toEqual([]);
    expect(events.at(-1)).toMatchObject({ type: "hive_catalog", at: 41_500, models: [] });
  });
});
