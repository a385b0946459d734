import type { Device, InstalledWorkerType } from "@rbee/contract";
import { choosePlacement, estimateWorkerMemory, type HiveEntry } from "@rbee/queen";
import { WORKER_TYPES } from "@rbee/worker-types";
import { describe, expect, it } from "vitest";

/** The placement rule on its own: declared hives and devices, no processes. */

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function device(id: string, total: number, free = total, simulated = false): Device {
  const kind = id.split(":")[0] as Device["kind"];
  return { id, kind, name: id, memory_total: total, memory_used: total - free, memory_free: free, simulated };
}

function hive(id: string, devices: Device[], workerTypes?: InstalledWorkerType[]): HiveEntry {
  return {
    id,
    url: `http://${id}:7835`,
    version: "0",
    startedAt: "",
    intervalMs: 5000,
    devices,
    models: [],
    workerTypes,
    lastSeen: 0,
    state: "live",
  };
}

const none = { reserved: () => 0, promised: () => 0, replicas: () => 0 };
/** Every device needs the same: the rule on its own, without an estimate. */
const fixed = (n: number) => ({ need: () => n });
const where = (p: { hive: HiveEntry; device: Device }) => `${p.hive.id}/${p.device.id}`;

describe("choosePlacement (declared devices)", () => {
  const a = hive("a", [device("cpu", 32 * GiB), device("cuda:0", 24 * GiB)]);
  const b = hive("b", [device("cpu", 16 * GiB), device("metal:0", 16 * GiB)]);
  const c = hive("c", [device("cpu", 8 * GiB), device("vulkan:0", 8 * GiB)]);
  const all = (holders: string[] = ["a", "b", "c"]) =>
    [a, b, c].map((h) => ({ hive: h, hasModel: holders.includes(h.id) }));

  it("spread: a GPU before a CPU, then the most free memory; pack: the least free that fits", () => {
    expect(where(choosePlacement(all(), none, fixed(GiB)))).toBe("a/cuda:0");
    expect(where(choosePlacement(all(), none, { ...fixed(GiB), policy: "pack" }))).toBe("c/vulkan:0");
    // too big for the two smaller GPUs: pack takes the one that fits
    expect(where(choosePlacement(all(), none, { ...fixed(12 * GiB), policy: "pack" }))).toBe("b/metal:0");
  });

  it("spread puts a replica on a hive without one, even a smaller one; hives holding the file come first", () => {
    const replicas = { ...none, replicas: (h: string) => (h === "a" ? 1 : 0) };
    expect(where(choosePlacement(all(), replicas, fixed(GiB)))).toBe("b/metal:0");
    expect(where(choosePlacement(all(["c"]), none, fixed(GiB)))).toBe("c/vulkan:0");
    expect(where(choosePlacement(all(["c"]), none, { ...fixed(GiB), policy: "pack" }))).toBe("c/vulkan:0");
  });

  it("memory promised to loading workers and reserved by loaded ones counts; nothing that does not fit is chosen", () => {
    // a measured GPU whose figure already shows a loaded worker is not charged twice
    const measured = hive("m", [device("cuda:0", 10 * GiB, 4 * GiB)]);
    const reserved = { ...none, reserved: () => 6 * GiB };
    expect(where(choosePlacement([{ hive: measured, hasModel: true }], reserved, fixed(3 * GiB)))).toBe("m/cuda:0");
    // a declared one never changes its figure: every worker comes off it
    const declared = hive("d", [device("cuda:0", 10 * GiB, 10 * GiB, true)]);
    expect(() =>
      choosePlacement([{ hive: declared, hasModel: true }], { ...none, reserved: () => 6 * GiB }, fixed(5 * GiB)),
    ).toThrow(/needs about 5\.0 GiB .* the largest free device is cuda:0 on hive d with 4\.0 GiB/);
    const promised = { ...none, promised: (h: string, d: string) => (h === "a" && d === "cuda:0" ? 23 * GiB : 0) };
    expect(where(choosePlacement(all(), promised, fixed(2 * GiB)))).toBe("b/metal:0");
  });

  it("pins: a device id restricts the choice; one no hive has is a 400 naming it", () => {
    expect(where(choosePlacement(all(), none, { ...fixed(GiB), device: "cpu" }))).toBe("a/cpu");
    expect(() => choosePlacement(all(), none, { ...fixed(GiB), device: "rocm:3" })).toThrow(
      expect.objectContaining({ statusCode: 400, code: "device_not_found" }),
    );
  });
});

describe("placement by worker type (declared devices and catalogs)", () => {
  const llm = WORKER_TYPES.llm as NonNullable<(typeof WORKER_TYPES)["llm"]>;
  const echo = WORKER_TYPES.echo as NonNullable<(typeof WORKER_TYPES)["echo"]>;
  const entry = (t: typeof llm, o: Partial<InstalledWorkerType> = {}): InstalledWorkerType => ({
    id: t.id,
    description: t.description,
    version: "1",
    capabilities: [...t.capabilities],
    device_kinds: [...t.deviceKinds],
    artifact: t.artifact,
    status: "Available",
    engines: [],
    runs_on: [...t.deviceKinds],
    ...o,
  });

  it("the estimate is the type's own for the device's kind: a GPU counts its backend's context", () => {
    const model = { size_bytes: 300 * MiB, gguf: undefined };
    const facts = {
      size_bytes: 300 * MiB,
      gguf: {
        architecture: "llama",
        parameter_count: 500e6,
        quantization: "Q4_K_M",
        context_length: 4096,
        block_count: 24,
        embedding_length: 1024,
        head_count: 16,
        head_count_kv: 16,
        vocab_size: 32000,
        tensor_bytes: 290 * MiB,
        file_bytes: 300 * MiB,
      },
    };
    const cpu = estimateWorkerMemory(llm, facts, "cpu");
    const gpu = estimateWorkerMemory(llm, facts, "cuda");
    expect(gpu - cpu).toBeGreaterThan(400 * MiB);
    // a model whose header is unknown: its size and a margin, on any device
    expect(estimateWorkerMemory(llm, model, "cpu")).toBeGreaterThan(300 * MiB);
    // a GPU with room for the CPU figure but not the GPU one is passed over for the CPU
    const h = hive("g", [device("cpu", 8 * GiB), device("cuda:0", 24 * GiB, cpu + 100 * MiB, true)]);
    const placed = choosePlacement([{ hive: h, hasModel: true }], none, {
      workerType: llm,
      need: (d) => estimateWorkerMemory(llm, facts, d.kind),
    });
    expect(where(placed)).toBe("g/cpu");
    expect(placed.needBytes).toBe(cpu);
    expect(placed.workerType).toBe("llm");
  });

  it("only hives whose catalog runs the type on the device's kind are chosen", () => {
    const cpuOnly = hive(
      "cpu-only",
      [device("cpu", 8 * GiB), device("cuda:0", 24 * GiB)],
      [entry(llm, { runs_on: ["cpu"] })],
    );
    const both = hive("both", [device("cpu", 4 * GiB)], [entry(llm), entry(echo)]);
    const cands = [cpuOnly, both].map((h) => ({ hive: h, hasModel: true }));
    // the llm worker's CUDA build is missing on cpu-only: its GPU is not a choice
    expect(where(choosePlacement(cands, none, { ...fixed(GiB), workerType: llm }))).toBe("cpu-only/cpu");
    expect(where(choosePlacement(cands, none, { ...fixed(GiB), workerType: echo }))).toBe("both/cpu");
  });

  it("a type no hive can run is a 409 that says, per hive, why and how to install it", () => {
    const missing = hive(
      "m",
      [device("cpu", 8 * GiB)],
      [entry(echo, { status: "Failed", runs_on: [], error: "echo-worker.mjs is missing" })],
    );
    const old = hive("old", [device("cpu", 8 * GiB)]);
    const err = (() => {
      try {
        choosePlacement(
          [missing, old].map((h) => ({ hive: h, hasModel: true })),
          none,
          { ...fixed(GiB), workerType: echo },
        );
      } catch (e) {
        return e as { statusCode: number; code: string; message: string };
      }
      throw new Error("placed");
    })();
    expect(err.statusCode).toBe(409);
    expect(err.code).toBe("worker_type_not_installed");
    expect(err.message).toContain("hive m: echo-worker.mjs is missing");
    expect(err.message).toContain("hive old: not in its catalog");
    // a spawn pinned to a hive that lacks it is told which hives have it
    expect(() =>
      choosePlacement([{ hive: missing, hasModel: true }], none, {
        ...fixed(GiB),
        workerType: echo,
        elsewhere: () => ["gpu-box"],
      }),
    ).toThrow(
      /the hive chosen cannot run worker type 'echo' \(hive m: .*\); it runs on hive gpu-box; install it there/,
    );
  });
});
