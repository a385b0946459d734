import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Device } from "@rbee/contract";
import { describe, expect, it } from "vitest";
import {
  type CommandResult,
  type CommandRunner,
  detectDevices,
  detectVulkanWithNodeLlamaCpp,
  NVIDIA_SMI_ARGS,
  NVIDIA_SMI_LEGACY_ARGS,
  ROCM_SMI_ARGS,
  runCommand,
  vulkanLoaderPresent,
} from "../src/devices/index.js";

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

function fixture(name: string): string {
  return readFileSync(new URL(`./fixtures/devices/${name}`, import.meta.url), "utf8");
}

const ok = (stdout: string): CommandResult => ({ stdout, stderr: "", exitCode: 0 });

/**
 * A command runner that replays recorded outputs: `replies` maps "cmd arg arg" to what the command
 * printed; anything else is "not installed" (null). `calls` lists what was run. The node-llama-cpp
 * probe (run with node itself) is recorded as "node-llama-cpp-probe".
 */
function replay(replies: Record<string, CommandResult | null>): { run: CommandRunner; calls: string[] } {
  const calls: string[] = [];
  const run: CommandRunner = async (cmd, args) => {
    const key = cmd === process.execPath ? "node-llama-cpp-probe" : [cmd, ...args].join(" ");
    calls.push(key);
    return replies[key] ?? null;
  };
  return { run, calls };
}

const NVIDIA_SMI = ["nvidia-smi", ...NVIDIA_SMI_ARGS].join(" ");
const NVIDIA_SMI_LEGACY = ["nvidia-smi", ...NVIDIA_SMI_LEGACY_ARGS].join(" ");
const ROCM_SMI = ["rocm-smi", ...ROCM_SMI_ARGS].join(" ");

/** Detection on a replayed machine: Linux unless said otherwise, no RBEE_DEVICES. */
async function detectOn(replies: Record<string, CommandResult | null>, platform: NodeJS.Platform = "linux") {
  const { run, calls } = replay(replies);
  const warnings: string[] = [];
  const devices = await detectDevices({ run, platform, env: {}, onWarning: (m) => warnings.push(m) });
  for (const device of devices) expect(Device.parse(device)).toEqual(device);
  expect(devices[0]?.id).toBe("cpu");
  return { devices, calls, warnings, ids: devices.map((d) => d.id) };
}

describe("detectDevices with recorded outputs", () => {
  it("on a recorded nvidia-smi output from a 2-GPU machine, lists the CPU then cuda:0 and cuda:1, and skips Vulkan", async () => {
    const { ids, devices, calls, warnings } = await detectOn({ [NVIDIA_SMI]: ok(fixture("nvidia-smi-2gpu.csv")) });
    expect(ids).toEqual(["cpu", "cuda:0", "cuda:1"]);
    expect(devices[1]).toMatchObject({ name: "NVIDIA GeForce RTX 4090", memory_total: 24564 * MIB });
    expect(calls).toEqual([NVIDIA_SMI, ROCM_SMI]);
    expect(warnings).toEqual([]);
  });

  it("on recorded outputs of driver 470, asks again without compute_cap and reads the legacy columns", async () => {
    const { ids, calls, warnings } = await detectOn({
      [NVIDIA_SMI]: { stdout: fixture("nvidia-smi-470-compute-cap-error.txt"), exitCode: 2 },
      [NVIDIA_SMI_LEGACY]: ok(fixture("nvidia-smi-470-legacy.csv")),
    });
    expect(ids).toEqual(["cpu", "cuda:0", "cuda:1"]);
    expect(calls).toContain(NVIDIA_SMI_LEGACY);
    expect(warnings).toEqual([]);
  });

  it("on a recorded nvidia-smi output from a DGX Spark, gives the GB10 the machine's memory", async () => {
    const { devices } = await detectOn({ [NVIDIA_SMI]: ok(fixture("nvidia-smi-na-fields.csv")) });
    const [cpu, gb10] = devices;
    expect(gb10).toMatchObject({
      id: "cuda:0",
      name: "NVIDIA GB10",
      unified_memory: true,
      memory_total: cpu?.memory_total,
    });
  });

  it("on a recorded nvidia-smi failure (driver not loaded), lists only the CPU and says why", async () => {
    const { ids, warnings } = await detectOn({
      [NVIDIA_SMI]: { stdout: fixture("nvidia-smi-no-driver.txt"), exitCode: 9 },
    });
    expect(ids).toEqual(["cpu"]);
    expect(warnings).toEqual([
      expect.stringMatching(/^nvidia-smi exited with code 9: NVIDIA-SMI has failed because it couldn't communicate/),
    ]);
  });

  it("when nvidia-smi prints garbage with exit code 0, lists only the CPU and warns", async () => {
    const { ids, warnings } = await detectOn({ [NVIDIA_SMI]: ok("Segmentation fault\n") });
    expect(ids).toEqual(["cpu"]);
    expect(warnings).toHaveLength(1);
  });

  it("on a recorded rocm-smi output from an MI250 machine, lists the CPU then rocm:0 and rocm:1", async () => {
    const { ids, devices } = await detectOn({ [ROCM_SMI]: ok(fixture("rocm-smi-mi250.json")) });
    expect(ids).toEqual(["cpu", "rocm:0", "rocm:1"]);
    expect(devices[1]?.memory_total).toBe(68_702_699_520);
  });

  it("on recorded outputs from an M2 Pro Mac (platform darwin), lists metal:0 with unified memory and the CPU's free memory from vm_stat", async () => {
    const { ids, devices, calls, warnings } = await detectOn(
      {
        "system_profiler SPDisplaysDataType -json": ok(fixture("system_profiler-m2pro.json")),
        "sysctl -n hw.memsize": ok(fixture("sysctl-hw.memsize-m2pro.txt")),
        vm_stat: ok(fixture("vm_stat-m2pro.txt")),
      },
      "darwin",
    );
    expect(ids).toEqual(["cpu", "metal:0"]);
    expect(devices[1]).toEqual({
      id: "metal:0",
      kind: "metal",
      name: "Apple M2 Pro",
      memory_total: 32 * GIB,
      memory_used: 32 * GIB - 11_642_126_336,
      memory_free: 11_642_126_336,
      unified_memory: true,
    });
    const cpu = devices[0]!;
    expect(cpu.memory_free).toBe(Math.min(11_642_126_336, cpu.memory_total));
    expect(calls.sort()).toEqual(["sysctl -n hw.memsize", "system_profiler SPDisplaysDataType -json", "vm_stat"]);
    expect(warnings).toEqual([]);
  });

  it("on a recorded system_profiler output from an Intel Mac with an AMD GPU, lists metal:0 with its own VRAM", async () => {
    const { devices } = await detectOn(
      { "system_profiler SPDisplaysDataType -json": ok(fixture("system_profiler-intel-amd.json")) },
      "darwin",
    );
    expect(devices.slice(1)).toEqual([
      expect.objectContaining({
        id: "metal:0",
        name: "AMD Radeon Pro 5500M",
        memory_total: 8 * GIB,
        unified_memory: false,
      }),
    ]);
  });

  it("on a machine with no GPU tools at all, lists only the CPU, without warnings", async () => {
    const { ids, calls, warnings } = await detectOn({});
    expect(ids).toEqual(["cpu"]);
    expect(calls).toEqual([NVIDIA_SMI, ROCM_SMI, "node-llama-cpp-probe", "vulkaninfo --summary"]);
    expect(warnings).toEqual([]);
  });

  it("when every command times out (the runner answers null), lists only the CPU", async () => {
    const run: CommandRunner = async () => null;
    const devices = await detectDevices({ run, platform: "linux", env: {} });
    expect(devices.map((d) => d.id)).toEqual(["cpu"]);
  });

  it("when the runner itself throws, lists only the CPU and warns instead of throwing", async () => {
    const warnings: string[] = [];
    const run: CommandRunner = async (cmd) => {
      throw new Error(`spawn ${cmd} EACCES`);
    };
    const devices = await detectDevices({ run, platform: "linux", env: {}, onWarning: (m) => warnings.push(m) });
    expect(devices.map((d) => d.id)).toEqual(["cpu"]);
    expect(warnings).toContain("nvidia-smi could not be run (spawn nvidia-smi EACCES); its devices are skipped");
  });

  it("on a recorded vulkaninfo --summary (no CUDA/ROCm), lists the Vulkan GPUs and warns that their memory is unknown", async () => {
    const { ids, warnings } = await detectOn({ "vulkaninfo --summary": ok(fixture("vulkaninfo-summary.txt")) });
    expect(ids).toEqual(["cpu", "vulkan:0", "vulkan:1"]);
    expect(warnings).toEqual([expect.stringContaining("not their memory")]);
  });

  it("prefers node-llama-cpp's answer (names and VRAM) to vulkaninfo", async () => {
    const probe = `RBEE_VULKAN_PROBE ${JSON.stringify({ names: ["AMD Radeon RX 7800 XT (RADV NAVI32)"], vram: { total: 16 * GIB, used: 300 * MIB, free: 16 * GIB - 300 * MIB, unifiedSize: 0 } })}\n`;
    const { devices, calls } = await detectOn({
      "node-llama-cpp-probe": ok(probe),
      "vulkaninfo --summary": ok(fixture("vulkaninfo-summary.txt")),
    });
    expect(devices.slice(1)).toEqual([
      {
        id: "vulkan:0",
        kind: "vulkan",
        name: "AMD Radeon RX 7800 XT (RADV NAVI32)",
        memory_total: 16 * GIB,
        memory_used: 300 * MIB,
        memory_free: 16 * GIB - 300 * MIB,
      },
    ]);
    expect(calls).not.toContain("vulkaninfo --summary");
  });

  it("skips Vulkan when asked to, and when a CUDA GPU was found", async () => {
    const { run, calls } = replay({ "vulkaninfo --summary": ok(fixture("vulkaninfo-summary.txt")) });
    const devices = await detectDevices({ run, platform: "linux", env: {}, vulkan: false });
    expect(devices.map((d) => d.id)).toEqual(["cpu"]);
    expect(calls).toEqual([NVIDIA_SMI, ROCM_SMI]);
  });

  it("on a recorded llvmpipe-only vulkaninfo, lists only the CPU", async () => {
    const { ids } = await detectOn({ "vulkaninfo --summary": ok(fixture("vulkaninfo-llvmpipe-only.txt")) });
    expect(ids).toEqual(["cpu"]);
  });
});

describe("detectDevices on this machine (no GPU here)", () => {
  it("lists a valid CPU first, with memory and cores, and does not throw or hang", async () => {
    const warnings: string[] = [];
    const devices = await detectDevices({ env: {}, onWarning: (m) => warnings.push(m) });
    const cpu = devices[0];
    expect(cpu?.id).toBe("cpu");
    expect(cpu?.kind).toBe("cpu");
    expect(cpu?.memory_total).toBeGreaterThan(0);
    expect(cpu?.cores).toBeGreaterThanOrEqual(1);
    expect(cpu?.name).not.toBe("");
    for (const device of devices) expect(Device.parse(device)).toEqual(device);
  });

  it("asks node-llama-cpp for Vulkan GPUs and gets none here, without throwing", async () => {
    await expect(detectVulkanWithNodeLlamaCpp()).resolves.toEqual([]);
  });

  it("kills a node-llama-cpp probe that hangs and answers []", async () => {
    const hangs = "data:text/javascript,await new Promise(() => setInterval(() => {}, 1000));";
    const warnings: string[] = [];
    const devices = await detectVulkanWithNodeLlamaCpp({
      moduleUrl: hangs,
      timeoutMs: 1500,
      onWarning: (m) => warnings.push(m),
    });
    expect(devices).toEqual([]);
    expect(warnings).toEqual([expect.stringContaining("did not finish within 1500 ms")]);
  });
});

describe.skipIf(process.platform === "win32")("runCommand", () => {
  it("answers the output and exit code of a command that ran", async () => {
    await expect(runCommand("sh", ["-c", "echo hi; exit 3"], 5000)).resolves.toEqual({
      stdout: "hi\n",
      stderr: "",
      exitCode: 3,
    });
  });

  it("answers null, without a warning, for a command that is not installed", async () => {
    const warnings: string[] = [];
    await expect(runCommand("rbee-no-such-tool", [], 5000, (m) => warnings.push(m))).resolves.toBeNull();
    expect(warnings).toEqual([]);
  });

  it("answers null, with a warning, for a command that does not finish in time", async () => {
    const warnings: string[] = [];
    await expect(runCommand("sleep", ["10"], 200, (m) => warnings.push(m))).resolves.toBeNull();
    expect(warnings).toEqual(["sleep did not finish within 200 ms and was stopped; its devices are skipped"]);
  });
});

describe("vulkanLoaderPresent: no Vulkan probe where no Vulkan program can run", () => {
  it("finds libvulkan.so.1 on LD_LIBRARY_PATH, and vulkan-1.dll in System32", () => {
    const dir = mkdtempSync(join(tmpdir(), "rbee-vulkan-"));
    try {
      const env = { LD_LIBRARY_PATH: `/nonexistent:${dir}`, SystemRoot: dir };
      const before = { linux: vulkanLoaderPresent("linux", env), win32: vulkanLoaderPresent("win32", env) };
      writeFileSync(join(dir, "libvulkan.so.1"), "");
      mkdirSync(join(dir, "System32"));
      writeFileSync(join(dir, "System32", "vulkan-1.dll"), "");
      expect(vulkanLoaderPresent("linux", env)).toBe(true);
      expect(vulkanLoaderPresent("win32", env)).toBe(true);
      expect(before.win32).toBe(false);
      // on Linux the system's own directories are looked at too: false unless this machine has Vulkan
      expect(before.linux).toBe(vulkanLoaderPresent("linux", {}));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("still looks for Vulkan with replayed tools, whatever this machine has", async () => {
    const { run, calls } = replay({});
    await detectDevices({ run, platform: "linux", env: {} });
    expect(calls).toContain("node-llama-cpp-probe");
  });
});
