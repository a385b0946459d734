import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, InvalidTransitionError } from "@rbee/server-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ManagedWorker, moveWorker, SUPERVISION_TRANSITIONS, type SupervisionState } from "../src/managed-worker.js";
import { WORKER_PROCESS_TRANSITIONS } from "../src/worker-process.js";

const STATES = Object.keys(SUPERVISION_TRANSITIONS) as SupervisionState[];

/** Every state reachable from `from` along the table. */
function reachable<S extends string>(table: Readonly<Record<S, readonly S[]>>, from: S): Set<S> {
  const seen = new Set<S>([from]);
  const todo = [from];
  for (let s = todo.pop(); s !== undefined; s = todo.pop()) {
    for (const next of table[s]) {
      if (!seen.has(next)) {
        seen.add(next);
        todo.push(next);
      }
    }
  }
  return seen;
}

const worker = (initial?: "starting" | "running") =>
  new ManagedWorker({ workerId: "llm-1", workerType: "llm", modelId: "m", device: "cpu" }, 9300, initial);

describe("the hive's supervision states", () => {
  it("allow exactly the moves of the worker life cycle (docs/worker-contract.md)", () => {
    const allowed = STATES.flatMap((from) => SUPERVISION_TRANSITIONS[from].map((to) => `${from} → ${to}`));
    expect(allowed.sort()).toEqual(
      [
        // ready; its first start failed; stopped while starting
        "starting → running",
        "starting → failed",
        "starting → stopping",
        // crashed; crashed with no restarts left, or lost while adopted; stopped; ended itself
        "running → restarting",
        "running → failed",
        "running → stopping",
        "running → stopped",
        // a failed restart waits again; ready again; restarts ran out; stopped
        "restarting → restarting",
        "restarting → running",
        "restarting → failed",
        "restarting → stopping",
        "stopping → stopped",
        // a Failed worker stays listed until it is stopped
        "failed → stopping",
      ].sort(),
    );
  });

  it("reach every state from a spawn or an adoption, let every worker be stopped, and end in stopped", () => {
    const fromSpawn = reachable(SUPERVISION_TRANSITIONS, "starting");
    expect([...fromSpawn].sort()).toEqual([...STATES].sort());
    expect(SUPERVISION_TRANSITIONS.stopped).toEqual([]);
    for (const s of STATES) expect(reachable(SUPERVISION_TRANSITIONS, s).has("stopped"), s).toBe(true);
    // nothing comes back from a stop, or from Failed except through a stop
    expect([...reachable(SUPERVISION_TRANSITIONS, "stopping")].sort()).toEqual(["stopped", "stopping"]);
    expect([...reachable(SUPERVISION_TRANSITIONS, "failed")].sort()).toEqual(["failed", "stopped", "stopping"]);
  });

  it("is the only way a ManagedWorker's state changes, and its status follows", () => {
    const w = worker();
    expect(w.state).toBe("starting");
    expect(w.status()).toBe("Starting");
    expect(w.moveTo("running")).toBe("starting");
    expect(w.status()).toBe("Ready");
    w.moveTo("restarting");
    expect(w.status()).toBe("Starting");
    w.moveTo("failed");
    expect(w.status()).toBe("Failed");
    expect(() => w.moveTo("running")).toThrow(InvalidTransitionError);
    expect(w.state).toBe("failed");
    w.moveTo("stopping");
    expect(w.status()).toBe("Stopping");
    w.moveTo("stopped");
    expect(w.status()).toBe("Stopped");
    for (const to of STATES) expect(() => w.moveTo(to)).toThrow(/worker 'llm-1' cannot move from stopped to/);
    expect(worker("running").state).toBe("running");
  });
});

describe("moveWorker (the supervisor's one way to change a worker's state)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "rbee-states-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const lines = async (file: string) =>
    (await readFile(file, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it("logs an allowed move at debug level", async () => {
    const file = join(dir, "ok.log");
    const w = worker();
    expect(moveWorker(w, "running", createLogger({ service: "hive", destination: file, level: "debug" }), true)).toBe(
      true,
    );
    expect(w.state).toBe("running");
    expect(await lines(file)).toEqual([
      expect.objectContaining({ level: "debug", worker_id: "llm-1", from: "starting", to: "running" }),
    ]);
  });

  it("refuses an invalid move and logs it as an error with its stack, when not strict", async () => {
    const file = join(dir, "lenient.log");
    const w = worker("running");
    w.moveTo("stopping");
    const log = createLogger({ service: "hive", destination: file, level: "info" });
    expect(moveWorker(w, "running", log, false)).toBe(false);
    expect(w.state).toBe("stopping");
    const [line, ...rest] = await lines(file);
    expect(rest).toEqual([]);
    expect(line).toMatchObject({ level: "error", worker_id: "llm-1", from: "stopping", to: "running" });
    expect(String(line?.msg)).toMatch(/^BUG: invalid change of a worker's supervision state/);
    expect(String(line?.stack)).toMatch(/moveWorker/);
  });

  it("throws an invalid move when strict (as the tests run hives), after logging it", async () => {
    const file = join(dir, "strict.log");
    const w = worker();
    const log = createLogger({ service: "hive", destination: file, level: "info" });
    expect(() => moveWorker(w, "stopped", log, true)).toThrow("worker 'llm-1' cannot move from starting to stopped");
    expect(w.state).toBe("starting");
    expect(await lines(file)).toEqual([expect.objectContaining({ level: "error", from: "starting", to: "stopped" })]);
  });
});

describe("a worker process's states", () => {
  it("start, may become ready, may be stopped, and exit once from any of them", () => {
    expect(WORKER_PROCESS_TRANSITIONS).toEqual({
      starting: ["ready", "stopping", "exited"],
      ready: ["stopping", "exited"],
      stopping: ["exited"],
      exited: [],
    });
  });
});
