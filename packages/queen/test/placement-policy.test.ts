import type { Device } from "@rbee/contract";
import { choosePlacement, type HiveEntry } from "@rbee/queen";
import { describe, expect, it } from "vitest";

/** The placement rule on its own: declared hives and devices, no processes. */

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function device(id: string, total: number, free = total, simulated = false): Device {
  const kind = id.split(":")[0] as Device["kind"];
  return { id, kind, name: id, memory_total: total, memory_used: total - free, memory_free: free, simulated };
}

function hive(id: string, devices: Device[]): HiveEntry {
  return {
    id,
    url: `http://${id}:7835`,
    version: "0",
    startedAt: "",
    intervalMs: 5000,
    devices,
    models: [],
    lastSeen: 0,
    state: "live",
  };
}

const none = { reserved: () => 0, promised: () => 0, replicas: () => 0 };
const where = (p: { hive: HiveEntry; device: Device }) => `${p.hive.id}/${p.device.id}`;

describe("choosePlacement (declared devices)", () => {
  const a = hive("a", [device("cpu", 32 * GiB), device("cuda:0", 24 * GiB)]);
  const b = hive("b", [device("cpu", 16 * GiB), device("metal:0", 16 * GiB)]);
  const c = hive("c", [device("cpu", 8 * GiB), device("vulkan:0", 8 * GiB)]);
  const all = (needBytes: number, holders: string[] = ["a", "b", "c"]) =>
    [a, b, c].map((h) => ({ hive: h, needBytes, hasModel: holders.includes(h.id) }));

  it("spread: a GPU before a CPU, then the most free memory; pack: the least free that fits", () => {
    expect(where(choosePlacement(all(GiB), none))).toBe("a/cuda:0");
    expect(where(choosePlacement(all(GiB), none, { policy: "pack" }))).toBe("c/vulkan:0");
    // too big for the two smaller GPUs: pack takes the one that fits
    expect(where(choosePlacement(all(12 * GiB), none, { policy: "pack" }))).toBe("b/metal:0");
  });

  it("spread puts a replica on a hive without one, even a smaller one; hives holding the file come first", () => {
    const replicas = { ...none, replicas: (h: string) => (h === "a" ? 1 : 0) };
    expect(where(choosePlacement(all(GiB), replicas))).toBe("b/metal:0");
    expect(where(choosePlacement(all(GiB, ["c"]), none))).toBe("c/vulkan:0");
    expect(where(choosePlacement(all(GiB, ["c"]), none, { policy: "pack" }))).toBe("c/vulkan:0");
  });

  it("memory promised to loading workers and reserved by loaded ones counts; nothing that does not fit is chosen", () => {
    // a measured GPU whose figure already shows a loaded worker is not charged twice
    const measured = hive("m", [device("cuda:0", 10 * GiB, 4 * GiB)]);
    const reserved = { ...none, reserved: () => 6 * GiB };
    expect(where(choosePlacement([{ hive: measured, needBytes: 3 * GiB, hasModel: true }], reserved))).toBe("m/cuda:0");
    // a declared one never changes its figure: every worker comes off it
    const declared = hive("d", [device("cuda:0", 10 * GiB, 10 * GiB, true)]);
    expect(() =>
      choosePlacement([{ hive: declared, needBytes: 5 * GiB, hasModel: true }], { ...none, reserved: () => 6 * GiB }),
    ).toThrow(/needs about 5\.0 GiB .* the largest free device is cuda:0 on hive d with 4\.0 GiB/);
    const promised = { ...none, promised: (h: string, d: string) => (h === "a" && d === "cuda:0" ? 23 * GiB : 0) };
    expect(where(choosePlacement(all(2 * GiB), promised))).toBe("b/metal:0");
  });

  it("pins: a device id restricts the choice; one no hive has is a 400 naming it", () => {
    expect(where(choosePlacement(all(GiB), none, { device: "cpu" }))).toBe("a/cpu");
    expect(() => choosePlacement(all(GiB), none, { device: "rocm:3" })).toThrow(
      expect.objectContaining({ statusCode: 400, code: "device_not_found" }),
    );
  });
});
