import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROTOCOL_VERSION } from "@rbee/contract";
import { createLogger } from "@rbee/server-kit";
import { waitFor } from "@rbee/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HiveMetrics } from "../src/hive-metrics.js";
import { LOAD_DEBOUNCE_MS, QueenHeartbeat } from "../src/queen-heartbeat.js";
import { FakeQueen } from "./helpers/fake-queen.js";

describe("QueenHeartbeat (hive → queen)", () => {
  let tmp: string;
  let queen: FakeQueen;
  let task: QueenHeartbeat | undefined;
  let payloads = 0;
  let commands: unknown[] = [];

  const start = (intervalMs: number, queenUrl = queen.url) => {
    task = new QueenHeartbeat({
      queenUrl,
      token: "the-token",
      intervalMs,
      payload: async () => {
        payloads++;
        return {
          protocol_version: PROTOCOL_VERSION,
          hive_id: "h",
          url: "http://127.0.0.1:7835",
          version: "0.1.0",
          started_at: new Date().toISOString(),
          interval_ms: intervalMs,
          devices: [],
          workers: [],
          models: [],
        };
      },
      onCommand: (command) => commands.push(command),
      log: createLogger({ service: "hive", destination: join(tmp, "hive.log") }),
      metrics: new HiveMetrics(),
    });
    task.start();
    return task;
  };
  const logLines = async () => (await readFile(join(tmp, "hive.log"), "utf8").catch(() => "")).trim().split("\n");

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), "rbee-queen-hb-"));
    queen = await FakeQueen.start();
    payloads = 0;
    commands = [];
  });
  afterEach(async () => {
    await task?.stop();
    await queen.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it("hands the queen's commands over from its reply, and skips one it does not know", async () => {
    const keepAlive = { type: "set_keep_alive", worker_id: "llm-1", keep_alive_ms: 420_000 };
    queen.commands = [{ type: "from_the_future", x: 1 }, keepAlive, { type: "set_keep_alive", worker_id: 7 }];
    start(60_000);
    await waitFor(() => (commands.length > 0 ? true : undefined), 5000, "a command to be handed over");
    expect(commands).toEqual([keepAlive]);
  });

  it("beats at once on start, then soon after beatSoon(), with the cluster token", async () => {
    start(60_000);
    await waitFor(() => (queen.beats.length === 1 ? true : undefined), 5000);
    task?.beatSoon();
    await waitFor(() => (queen.beats.length === 2 ? true : undefined), 5000, "a second beat soon after beatSoon()");
    expect(queen.beats.map((b) => b.authorization)).toEqual(["Bearer the-token", "Bearer the-token"]);
    // a burst of load changes rides in one heartbeat
    for (let i = 0; i < 20; i++) task?.beatSoon(LOAD_DEBOUNCE_MS);
    await waitFor(() => (queen.beats.length === 3 ? true : undefined), 5000);
    await new Promise((r) => setTimeout(r, 300));
    expect(queen.beats).toHaveLength(3);
  });

  it("retries a queen that is down with backoff, and logs each outage once", async () => {
    queen.failWith = 503;
    start(400);
    await waitFor(() => (queen.refused >= 4 ? true : undefined), 10_000, "four refused heartbeats");
    queen.failWith = undefined;
    await waitFor(() => (queen.beats.length >= 1 ? true : undefined), 5000);
    queen.failWith = 503;
    const refusedBefore = queen.refused;
    await waitFor(() => (queen.refused >= refusedBefore + 3 ? true : undefined), 10_000);
    const messages = (await logLines()).map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(messages.filter((m) => m.startsWith("queen not reachable yet"))).toHaveLength(1);
    expect(messages.filter((m) => m === "queen reached")).toHaveLength(1);
    expect(messages.filter((m) => m.startsWith("queen unreachable"))).toHaveLength(1);
    expect(payloads).toBeGreaterThanOrEqual(queen.refused);
  });
});
