import type { Device } from "@rbee/contract";
import { describe, expect, it } from "vitest";
import type { HiveEntry } from "../src/registry/cluster-registry.js";
import { planGroup, type ShardCandidate } from "../src/scheduler/group-planner.js";

/**
 * The split of a worker group, on declared (simulated) device inventories: which devices, and each
 * one's share, from free memory alone (no processes: the plan is a pure function of the cluster).
 */
const GiB = 1024 ** 3;
const hive = (id: string): HiveEntry => ({
  id,
  url: `http://${id}:7835`,
  version: "test",
  startedAt: new Date(0).toISOString(),
  intervalMs: 5000,
  devices: [],
  models: [],
  lastSeen: 0,
  state: "live",
});
const gpu = (id: string, free: number): Device => ({
  id,
  kind: "cuda",
  name: `${id} (simulated)`,
  memory_total: free,
  memory_used: 0,
  memory_free: free,
  simulated: true,
});
const at = (h: HiveEntry, d: Device): ShardCandidate => ({ hive: h, device: d, free: d.memory_free });
const names = (plan: ReturnType<typeof planGroup>) => plan.map((p) => `${p.hive.id}:${p.device.id}`);

describe("group planner (declared, simulated devices)", () => {
  const a = hive("a");
  const b = hive("b");
  const c = hive("c");

  it("prefers devices of one machine whose sum fits over bigger devices spread over machines", () => {
    const plan = planGroup(
      [
        at(a, gpu("cuda:0", 30 * GiB)),
        at(b, gpu("cuda:0", 12 * GiB)),
        at(b, gpu("cuda:1", 12 * GiB)),
        at(c, gpu("cuda:0", 20 * GiB)),
      ],
      22 * GiB,
    );
    // a alone does not need a group; b's two GPUs together fit
    expect(names(plan)).toEqual(["b:cuda:0", "b:cuda:1"]);
  });

  it("spreads over machines, the most free first, only when no machine fits it alone; shares follow free memory", () => {
    const plan = planGroup(
      [at(a, gpu("cuda:0", 8 * GiB)), at(b, gpu("cuda:0", 24 * GiB)), at(c, gpu("cuda:0", 16 * GiB))],
      36 * GiB,
    );
    expect(names(plan)).toEqual(["b:cuda:0", "c:cuda:0"]);
    expect(plan.map((p) => p.fraction)).toEqual([0.6, 0.4]);
    expect(plan.map((p) => p.memoryBytes)).toEqual([Math.ceil(36 * GiB * 0.6), Math.ceil(36 * GiB * 0.4)]);
    for (const p of plan) expect(p.memoryBytes).toBeLessThanOrEqual(p.device.memory_free);
  });

  it("takes exactly the devices asked for, in their order, and refuses with the figures when their sum is short", () => {
    const all = [at(a, gpu("cuda:0", 8 * GiB)), at(b, gpu("cuda:0", 24 * GiB))];
    const asked = [
      { hive: "a", device: "cuda:0" },
      { hive: "b", device: "cuda:0" },
    ];
    expect(names(planGroup(all, 16 * GiB, asked))).toEqual(["a:cuda:0", "b:cuda:0"]);
    let refusal: unknown;
    try {
      planGroup(all, 40 * GiB, asked);
    } catch (err) {
      refusal = err;
    }
    expect(refusal).toMatchObject({
      statusCode: 503,
      code: "insufficient_memory",
      details: {
        needed_bytes: 40 * GiB,
        available_bytes: 32 * GiB,
        available: [
          { device: "a:cuda:0", free_bytes: 8 * GiB },
          { device: "b:cuda:0", free_bytes: 24 * GiB },
        ],
      },
    });
    expect((refusal as Error).message).toBe(
      "the model needs 40.0 GiB and the devices asked for have 32.0 GiB free in all (a:cuda:0 8.0 GiB, b:cuda:0 24.0 GiB): not even a worker group split over them fits; free memory or add a machine",
    );
    expect(() => planGroup(all, GiB, [{ hive: "z", device: "cuda:0" }, asked[0] as never])).toThrow(
      /z:cuda:0 is not a device of a live hive/,
    );
  });
});
