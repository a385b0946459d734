import { readFileSync } from "node:fs";
import { Device } from "@rbee/contract";
import { describe, expect, it } from "vitest";
import {
  NVIDIA_SMI_ARGS,
  NVIDIA_SMI_LEGACY_ARGS,
  parseMeminfo,
  parseNodeLlamaCppProbe,
  parseNvidiaSmi,
  parseRocmSmi,
  parseSystemProfilerDisplays,
  parseVmStat,
  parseVulkanInfoSummary,
} from "../src/devices/index.js";

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

function fixture(name: string): string {
  return readFileSync(new URL(`./fixtures/devices/${name}`, import.meta.url), "utf8");
}

/** Collects the warnings a parser gives. */
function warnings(): { onWarning: (message: string) => void; list: string[] } {
  const list: string[] = [];
  return { onWarning: (message) => list.push(message), list };
}

function expectValid(devices: readonly Device[]): void {
  for (const device of devices) expect(Device.parse(device)).toEqual(device);
}

describe("parseNvidiaSmi", () => {
  it("asks nvidia-smi for exactly the columns it reads", () => {
    expect(NVIDIA_SMI_ARGS).toEqual([
      "--query-gpu=index,name,memory.total,memory.used,memory.free,driver_version,compute_cap",
      "--format=csv,noheader,nounits",
    ]);
    expect(NVIDIA_SMI_LEGACY_ARGS).toEqual([
      "--query-gpu=index,name,memory.total,memory.used,memory.free,driver_version",
      "--format=csv,noheader,nounits",
    ]);
  });

  it("on a recorded nvidia-smi output from a 2-GPU machine, lists cuda:0 and cuda:1 with MiB turned into bytes", () => {
    const w = warnings();
    const devices = parseNvidiaSmi(fixture("nvidia-smi-2gpu.csv"), w);
    expect(devices).toEqual([
      {
        id: "cuda:0",
        kind: "cuda",
        name: "NVIDIA GeForce RTX 4090",
        memory_total: 25_757_220_864,
        memory_used: 1623 * MIB,
        memory_free: 22532 * MIB,
        driver_version: "550.54.14",
        compute_capability: "8.9",
      },
      {
        id: "cuda:1",
        kind: "cuda",
        name: "NVIDIA GeForce RTX 3090",
        memory_total: 24 * GIB,
        memory_used: 18 * MIB,
        memory_free: 24220 * MIB,
        driver_version: "550.54.14",
        compute_capability: "8.6",
      },
    ]);
    expect(w.list).toEqual([]);
    expectValid(devices);
  });

  it("on a recorded nvidia-smi output from a DGX Spark ([N/A] memory, blank lines, extra spaces), gives the GB10 the system memory", () => {
    const w = warnings();
    const devices = parseNvidiaSmi(fixture("nvidia-smi-na-fields.csv"), {
      ...w,
      systemMemory: { total: 128 * GIB, free: 100 * GIB },
    });
    expect(devices).toEqual([
      {
        id: "cuda:0",
        kind: "cuda",
        name: "NVIDIA GB10",
        memory_total: 128 * GIB,
        memory_used: 28 * GIB,
        memory_free: 100 * GIB,
        unified_memory: true,
        driver_version: "580.95.05",
        compute_capability: "12.1",
      },
    ]);
    expect(w.list).toEqual([]);
    expectValid(devices);
  });

  it("on a recorded DGX Spark output without the system memory, lists the GB10 with 0 bytes and says so", () => {
    const w = warnings();
    const [gb10] = parseNvidiaSmi(fixture("nvidia-smi-na-fields.csv"), w);
    expect(gb10).toMatchObject({ id: "cuda:0", memory_total: 0, memory_used: 0, memory_free: 0 });
    expect(w.list).toEqual([expect.stringContaining("no memory for GPU 0 (NVIDIA GB10)")]);
  });

  it("on a recorded output with [N/A] driver and compute capability, leaves those out and sorts by index", () => {
    const devices = parseNvidiaSmi(fixture("nvidia-smi-na-driver-and-cap.csv"));
    expect(devices).toEqual([
      {
        id: "cuda:0",
        kind: "cuda",
        name: "Tesla T4",
        memory_total: 15 * GIB,
        memory_used: 5 * MIB,
        memory_free: 14923 * MIB,
        compute_capability: "7.5",
      },
      {
        id: "cuda:1",
        kind: "cuda",
        name: "NVIDIA A100-SXM4-80GB",
        memory_total: 80 * GIB,
        memory_used: 0,
        memory_free: 81037 * MIB,
        driver_version: "535.161.08",
      },
    ]);
    expectValid(devices);
  });

  it("on a recorded driver-470 output without compute_cap (six columns), reads the legacy layout", () => {
    const devices = parseNvidiaSmi(fixture("nvidia-smi-470-legacy.csv"));
    expect(devices.map((d) => [d.id, d.name, d.memory_total, d.driver_version, d.compute_capability])).toEqual([
      ["cuda:0", "Tesla K80", 11441 * MIB, "470.182.03", undefined],
      ["cuda:1", "Tesla K80", 11441 * MIB, "470.182.03", undefined],
    ]);
  });

  it("keeps a product name that holds a comma", () => {
    const [device] = parseNvidiaSmi("0, NVIDIA Made-Up, Inc. Board, 8192, 0, 8192, 550.54.14, 8.6\n");
    expect(device?.name).toBe("NVIDIA Made-Up, Inc. Board");
    expect(device?.memory_total).toBe(8 * GIB);
  });

  it.each([
    ["empty output", ""],
    ["the driver error text", fixture("nvidia-smi-no-driver.txt")],
    ["the compute_cap error of driver 470", fixture("nvidia-smi-470-compute-cap-error.txt")],
    ["a line without an index", "GPU0, RTX, 1, 1, 1, 1, 1"],
  ])("gives [] and a warning, not an exception, for %s", (_what, text) => {
    const w = warnings();
    expect(parseNvidiaSmi(text, w)).toEqual([]);
    expect(w.list).toHaveLength(1);
  });
});

describe("parseRocmSmi", () => {
  it("on a recorded rocm-smi output from an MI250 (two GCDs, ROCm 5 field names), lists rocm:0 and rocm:1", () => {
    const w = warnings();
    const devices = parseRocmSmi(fixture("rocm-smi-mi250.json"), w);
    expect(devices).toEqual([
      {
        id: "rocm:0",
        kind: "rocm",
        name: "AMD INSTINCT MI250 (MCM) OAM AC MBA",
        memory_total: 68_702_699_520,
        memory_used: 11_153_408,
        memory_free: 68_702_699_520 - 11_153_408,
      },
      {
        id: "rocm:1",
        kind: "rocm",
        name: "AMD INSTINCT MI250 (MCM) OAM AC MBA",
        memory_total: 68_702_699_520,
        memory_used: 5_477_822_464,
        memory_free: 68_702_699_520 - 5_477_822_464,
      },
    ]);
    expect(w.list).toEqual([]);
    expectValid(devices);
  });

  it("on a recorded rocm-smi output with ROCm 6 field names, skips PCI ids to find a product name", () => {
    const devices = parseRocmSmi(fixture("rocm-smi-rx7900xt.json"));
    expect(devices.map((d) => [d.id, d.name, d.memory_total, d.memory_used])).toEqual([
      ["rocm:0", "Radeon RX 7900 XT", 21_458_059_264, 27_856_896],
      ["rocm:1", "Raphael", 512 * MIB, 73_093_120],
    ]);
    expectValid(devices);
  });

  it("reads the JSON behind a warning line, ignores entries that are not cards, and names a card it cannot name", () => {
    const text = `WARNING: AMD GPU device(s) is/are in a low-power state. Check power control/runtime_status\n\n${JSON.stringify(
      {
        card2: {
          "VRAM Total Memory (B)": "17163091968",
          "VRAM Total Used Memory (B)": "692142080",
          "Card Model": "0x73bf",
        },
        system: { "Driver version": "6.7.0" },
      },
    )}\n`;
    expect(parseRocmSmi(text)).toEqual([
      {
        id: "rocm:2",
        kind: "rocm",
        name: "AMD GPU (card2)",
        memory_total: 17_163_091_968,
        memory_used: 692_142_080,
        memory_free: 17_163_091_968 - 692_142_080,
      },
    ]);
  });

  it.each([
    ["empty output", ""],
    ["text that is not JSON", "ERROR: GPU[0]\t\t: Unable to get VRAM info"],
    ["truncated JSON", '{"card0": {"VRAM Total Memory (B)": "1'],
    ["a card without a VRAM total", '{"card0": {"Card Series": "Radeon RX 6800"}}'],
  ])("gives [] and a warning, not an exception, for %s", (_what, text) => {
    const w = warnings();
    expect(parseRocmSmi(text, w)).toEqual([]);
    expect(w.list).toHaveLength(1);
  });
});

describe("parseSystemProfilerDisplays and parseVmStat", () => {
  const memsize = Number(fixture("sysctl-hw.memsize-m2pro.txt").trim());

  it("reads free + inactive pages from a recorded vm_stat output with 16 KiB pages", () => {
    expect(parseVmStat(fixture("vm_stat-m2pro.txt"))).toBe((98234 + 612345) * 16384);
    expect(parseVmStat("vm_stat: not what we expected")).toBeUndefined();
  });

  it("on a recorded system_profiler output from an M2 Pro, lists metal:0 with the machine's unified memory", () => {
    const free = parseVmStat(fixture("vm_stat-m2pro.txt"));
    const devices = parseSystemProfilerDisplays(fixture("system_profiler-m2pro.json"), memsize, {
      memoryFreeBytes: free,
    });
    expect(devices).toEqual([
      {
        id: "metal:0",
        kind: "metal",
        name: "Apple M2 Pro",
        memory_total: 32 * GIB,
        memory_used: 32 * GIB - 11_642_126_336,
        memory_free: 11_642_126_336,
        unified_memory: true,
      },
    ]);
    expectValid(devices);
  });

  it("on a recorded M2 Pro output without vm_stat, counts all of the memory as free", () => {
    const [device] = parseSystemProfilerDisplays(fixture("system_profiler-m2pro.json"), memsize);
    expect(device).toMatchObject({ memory_total: 32 * GIB, memory_used: 0, memory_free: 32 * GIB });
  });

  it("on a recorded system_profiler output from an Intel Mac, lists the AMD GPU with its own 8 GB and skips Intel graphics", () => {
    const devices = parseSystemProfilerDisplays(fixture("system_profiler-intel-amd.json"), 16 * GIB);
    expect(devices).toEqual([
      {
        id: "metal:0",
        kind: "metal",
        name: "AMD Radeon Pro 5500M",
        memory_total: 8 * GIB,
        memory_used: 0,
        memory_free: 8 * GIB,
        unified_memory: false,
      },
    ]);
    expectValid(devices);
  });

  it.each([
    ["empty output", ""],
    ["the text report instead of JSON", "Graphics/Displays:\n\n    Apple M1:\n\n      Chipset Model: Apple M1\n"],
    ["JSON without SPDisplaysDataType", '{"SPHardwareDataType": []}'],
  ])("gives [] and a warning, not an exception, for %s", (_what, text) => {
    const w = warnings();
    expect(parseSystemProfilerDisplays(text, memsize, w)).toEqual([]);
    expect(w.list).toHaveLength(1);
  });
});

describe("parseVulkanInfoSummary", () => {
  it("on a recorded vulkaninfo --summary with a discrete GPU, an iGPU and llvmpipe, lists the two GPUs without memory", () => {
    const w = warnings();
    const devices = parseVulkanInfoSummary(fixture("vulkaninfo-summary.txt"), w);
    expect(devices).toEqual([
      {
        id: "vulkan:0",
        kind: "vulkan",
        name: "AMD Radeon RX 7800 XT (RADV NAVI32)",
        memory_total: 0,
        memory_used: 0,
        memory_free: 0,
        driver_version: "24.0.5",
      },
      {
        id: "vulkan:1",
        kind: "vulkan",
        name: "Intel(R) UHD Graphics 770 (ADL-S GT1)",
        memory_total: 0,
        memory_used: 0,
        memory_free: 0,
        driver_version: "24.0.5",
      },
    ]);
    expect(w.list).toEqual([]);
    expectValid(devices);
  });

  it("on a recorded vulkaninfo --summary with only llvmpipe, lists nothing and does not warn", () => {
    const w = warnings();
    expect(parseVulkanInfoSummary(fixture("vulkaninfo-llvmpipe-only.txt"), w)).toEqual([]);
    expect(w.list).toEqual([]);
  });

  it("on a recorded vulkaninfo --summary listing one card under two drivers, lists it once", () => {
    const devices = parseVulkanInfoSummary(fixture("vulkaninfo-same-gpu-two-drivers.txt"));
    expect(devices.map((d) => [d.id, d.name, d.driver_version])).toEqual([
      ["vulkan:0", "AMD Radeon RX 7800 XT", "2.0.302"],
    ]);
  });

  it("gives [] and a warning, not an exception, for output without devices", () => {
    const w = warnings();
    expect(parseVulkanInfoSummary("ERROR: [Loader Message] Code 0 : vkCreateInstance: Found no drivers!\n", w)).toEqual(
      [],
    );
    expect(w.list).toHaveLength(1);
  });
});

describe("parseNodeLlamaCppProbe", () => {
  const answer = (value: unknown) => `[node-llama-cpp] some log line\nRBEE_VULKAN_PROBE ${JSON.stringify(value)}\n`;

  it("gives one Vulkan GPU all of the VRAM node-llama-cpp reports", () => {
    const devices = parseNodeLlamaCppProbe(
      answer({
        names: ["AMD Radeon RX 7800 XT (RADV NAVI32)"],
        vram: { total: 16 * GIB, used: GIB, free: 15 * GIB, unifiedSize: 0 },
      }),
    );
    expect(devices).toEqual([
      {
        id: "vulkan:0",
        kind: "vulkan",
        name: "AMD Radeon RX 7800 XT (RADV NAVI32)",
        memory_total: 16 * GIB,
        memory_used: GIB,
        memory_free: 15 * GIB,
      },
    ]);
    expectValid(devices);
  });

  it("splits the VRAM of identical GPUs equally, and lists different GPUs with 0 bytes and a warning", () => {
    const same = parseNodeLlamaCppProbe(
      answer({
        names: ["Arc A770", "Arc A770"],
        vram: { total: 32 * GIB, used: 2 * GIB, free: 30 * GIB, unifiedSize: 0 },
      }),
    );
    expect(same.map((d) => [d.id, d.memory_total, d.memory_used, d.memory_free])).toEqual([
      ["vulkan:0", 16 * GIB, GIB, 15 * GIB],
      ["vulkan:1", 16 * GIB, GIB, 15 * GIB],
    ]);
    const w = warnings();
    const different = parseNodeLlamaCppProbe(
      answer({
        names: ["Arc A770", "Radeon 780M"],
        vram: { total: 20 * GIB, used: 0, free: 20 * GIB, unifiedSize: 0 },
      }),
      w.onWarning,
    );
    expect(different.map((d) => d.memory_total)).toEqual([0, 0]);
    expect(w.list).toHaveLength(1);
  });

  it("gives [] for an error answer, no answer, or garbage", () => {
    expect(parseNodeLlamaCppProbe(answer({ error: "NoBinaryFoundError" }))).toEqual([]);
    expect(parseNodeLlamaCppProbe("")).toEqual([]);
    expect(parseNodeLlamaCppProbe("RBEE_VULKAN_PROBE {not json")).toEqual([]);
  });
});

describe("parseMeminfo", () => {
  it("reads MemAvailable in bytes", () => {
    expect(
      parseMeminfo("MemTotal:       24684092 kB\nMemFree:        24362228 kB\nMemAvailable:   24328356 kB\n"),
    ).toBe(24328356 * 1024);
    expect(parseMeminfo("MemTotal: 1 kB\n")).toBeUndefined();
  });
});
