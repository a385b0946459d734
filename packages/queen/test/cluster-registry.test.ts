import type { ClusterEvent, HiveHeartbeat, HiveWorkerReport } from "@rbee/contract";
import { ClusterRegistry } from "@rbee/queen";
import { describe, expect, it } from "vitest";

const INTERVAL = 1000;

function report(id: string, status: HiveWorkerReport["status"] = "Ready"): HiveWorkerReport {
  return {
    worker_id: id,
    worker_type: "llm",
    model: "stories260k",
    device: "cpu",
    url: "http://127.0.0.1:9301",
    port: 9301,
    pid: 123,
    status,
    restarts: 0,
    last_exit: null,
    started_at: new Date(0).toISOString(),
    heartbeat_age_ms: 0,
    heartbeat: null,
  };
}

function beat(workers: HiveWorkerReport[]): HiveHeartbeat {
  return {
    protocol_version: 1,
    hive_id: "h1",
    url: "http://127.0.0.1:7835",
    version: "0.1.0",
    started_at: new Date(0).toISOString(),
    interval_ms: INTERVAL,
    devices: [],
    workers,
    models: [
      { id: "stories260k", name: "stories260K", size_bytes: 1, status: "Available", path: "/m/stories260K.gguf" },
    ],
  };
}

describe("ClusterRegistry (heartbeat bookkeeping, with a fake clock)", () => {
  it("a hive is stale after 3 missed intervals and lost after 6; nothing is routed to it meanwhile", () => {
    const reg = new ClusterRegistry({ defaultKeepAliveMs: 300_000, heartbeatIntervalMs: INTERVAL });
    const events: ClusterEvent[] = [];
    reg.subscribe((e) => events.push(e));
    reg.ingestHiveHeartbeat(beat([report("w1")]), 0);
    expect(reg.routableWorkers("STORIES260K").map((w) => w.id)).toEqual(["w1"]);
    reg.sweep(3 * INTERVAL);
    expect(reg.hives.get("h1")?.state).toBe("live");
    reg.sweep(3 * INTERVAL + 1);
    expect(reg.hives.get("h1")?.state).toBe("stale");
    expect(reg.routableWorkers("stories260k")).toEqual([]);
    reg.sweep(6 * INTERVAL + 1);
    expect(reg.hives.get("h1")?.state).toBe("lost");
    expect(reg.findModel("stories260k")).toEqual([]); // a lost hive's catalog is not offered
    reg.ingestHiveHeartbeat(beat([report("w1")]), 7 * INTERVAL);
    expect(reg.hives.get("h1")?.state).toBe("live");
    expect(events.filter((e) => e.type === "hive_state").map((e) => (e as { state: string }).state)).toEqual([
      "stale",
      "lost",
      "live",
    ]);
  });

  it("workers appear, change status and disappear with the hive's reports, as events", () => {
    const reg = new ClusterRegistry({ defaultKeepAliveMs: 300_000, heartbeatIntervalMs: INTERVAL });
    const events: ClusterEvent[] = [];
    reg.subscribe((e) => events.push(e));
    reg.ingestHiveHeartbeat(beat([report("w1", "Starting")]), 0);
    reg.ingestHiveHeartbeat(beat([report("w1", "Ready")]), 1000);
    reg.ingestHiveHeartbeat(beat([]), 5000);
    expect(events.map((e) => e.type)).toEqual(["hive_joined", "worker_added", "worker_status", "worker_removed"]);
    expect(reg.workers.size).toBe(0);
  });

  it("a worker just added from a spawn reply survives a heartbeat that was already on its way", () => {
    const reg = new ClusterRegistry({ defaultKeepAliveMs: 300_000, heartbeatIntervalMs: INTERVAL });
    reg.ingestHiveHeartbeat(beat([]), 0);
    reg.addSpawnedWorker("h1", report("w2"), 60_000, 1000);
    reg.ingestHiveHeartbeat(beat([]), 1100);
    expect(reg.workers.has("w2")).toBe(true);
    reg.ingestHiveHeartbeat(beat([]), 1000 + 2 * INTERVAL + 1);
    expect(reg.workers.has("w2")).toBe(false);
  });

  it("a hive's heartbeat forgets only its own workers, also after a worker moved to another hive", () => {
    const reg = new ClusterRegistry({ defaultKeepAliveMs: 300_000, heartbeatIntervalMs: INTERVAL });
    const h2 = (workers: HiveWorkerReport[]): HiveHeartbeat => ({ ...beat(workers), hive_id: "h2" });
    reg.ingestHiveHeartbeat(beat([report("w1"), report("w2")]), 0);
    reg.ingestHiveHeartbeat(h2([report("w3")]), 0);
    reg.ingestHiveHeartbeat(h2([report("w3"), report("w1")]), 5000); // w1 is h2's now
    reg.ingestHiveHeartbeat(beat([report("w2")]), 5000);
    expect([...reg.workers.keys()].sort()).toEqual(["w1", "w2", "w3"]);
    expect(reg.workers.get("w1")?.hiveId).toBe("h2");
    reg.ingestHiveHeartbeat(h2([report("w3")]), 10_000);
    expect([...reg.workers.keys()].sort()).toEqual(["w2", "w3"]);
  });

  it("keep-alive: a spawn's own value, else the hive's record of it, else the default", () => {
    const reg = new ClusterRegistry({ defaultKeepAliveMs: 300_000, heartbeatIntervalMs: INTERVAL });
    reg.ingestHiveHeartbeat(
      beat([report("a"), { ...report("b"), keep_alive_ms: null }, { ...report("c"), keep_alive_ms: 1000 }]),
      0,
    );
    expect(reg.workers.get("a")?.keepAliveMs).toBe(300_000);
    expect(reg.workers.get("b")?.keepAliveMs).toBe(Number.POSITIVE_INFINITY);
    expect(reg.workers.get("c")?.keepAliveMs).toBe(1000);
  });

  it("a model removed on the queen's request stays gone when a heartbeat sent before the removal still lists it", () => {
    const reg = new ClusterRegistry({ defaultKeepAliveMs: 300_000, heartbeatIntervalMs: INTERVAL });
    reg.ingestHiveHeartbeat(beat([]), 0);
    expect(reg.servableModels()).toEqual(["stories260k"]);
    reg.forgetModel("h1", "stories260k", 100);
    expect(reg.servableModels()).toEqual([]);
    reg.ingestHiveHeartbeat(beat([]), 200); // built before the removal: still lists it
    expect(reg.servableModels()).toEqual([]);
    reg.ingestHiveHeartbeat({ ...beat([]), models: [] }, 1200); // the hive's own word now
    reg.ingestHiveHeartbeat(beat([]), 2200); // fetched again: shown again
    expect(reg.servableModels()).toEqual(["stories260k"]);
    // a mark that no heartbeat clears lapses after 3 intervals
    reg.forgetModel("h1", "stories260k", 3000);
    reg.ingestHiveHeartbeat(beat([]), 3000 + 3 * INTERVAL + 1);
    expect(reg.servableModels()).toEqual(["stories260k"]);
  });
});
