import type { Device } from "@rbee/contract";
import { detectVulkanWithNodeLlamaCpp } from "./detect-vulkan-node-llama-cpp.js";
import { NVIDIA_SMI_ARGS, NVIDIA_SMI_LEGACY_ARGS, parseNvidiaSmi } from "./parse-nvidia-smi.js";
import { parseRocmSmi, ROCM_SMI_ARGS } from "./parse-rocm-smi.js";
import { parseSystemProfilerDisplays, SYSCTL_MEMSIZE_ARGS, SYSTEM_PROFILER_ARGS } from "./parse-system-profiler.js";
import { parseVmStat, VM_STAT_ARGS } from "./parse-vm-stat.js";
import { parseVulkanInfoSummary, VULKANINFO_ARGS } from "./parse-vulkaninfo.js";
import type { CommandResult, CommandRunner, WarningSink } from "./types.js";
import { firstLine, parseWholeNumber } from "./units.js";

/** What every vendor probe needs: how to run a command, how long it may take, where warnings go. */
export interface ProbeContext {
  run: CommandRunner;
  timeoutMs: number;
  warn: WarningSink;
}

/**
 * NVIDIA GPUs from `nvidia-smi`, retried without `compute_cap` for drivers too old to know it. A GPU
 * that shares the machine's memory (DGX Spark) gets the CPU's memory figures.
 */
export async function detectNvidiaGpus(ctx: ProbeContext, cpu: Device): Promise<Device[]> {
  let result = await runTool(ctx, "nvidia-smi", NVIDIA_SMI_ARGS);
  if (result !== undefined && result.exitCode !== 0 && /compute_cap/.test(output(result))) {
    result = await runTool(ctx, "nvidia-smi", NVIDIA_SMI_LEGACY_ARGS);
  }
  const stdout = succeeded(ctx, "nvidia-smi", result);
  if (stdout === undefined) return [];
  const systemMemory = { total: cpu.memory_total, free: cpu.memory_free };
  return parseNvidiaSmi(stdout, { onWarning: ctx.warn, systemMemory });
}

/** AMD GPUs from `rocm-smi`. */
export async function detectRocmGpus(ctx: ProbeContext): Promise<Device[]> {
  const stdout = succeeded(ctx, "rocm-smi", await runTool(ctx, "rocm-smi", ROCM_SMI_ARGS));
  return stdout === undefined ? [] : parseRocmSmi(stdout, { onWarning: ctx.warn });
}

/** What {@link detectAppleGpus} found. */
export interface AppleGpus {
  devices: Device[];
  /** Memory free for a new model (free + inactive pages from `vm_stat`), when it could be read. */
  memoryFreeBytes?: number;
}

/** Metal GPUs of a Mac, and the memory free for a new model. */
export async function detectAppleGpus(ctx: ProbeContext): Promise<AppleGpus> {
  const [profile, memsize, vmStat] = await Promise.all([
    runTool(ctx, "system_profiler", SYSTEM_PROFILER_ARGS),
    runTool(ctx, "sysctl", SYSCTL_MEMSIZE_ARGS),
    runTool(ctx, "vm_stat", VM_STAT_ARGS),
  ]);
  const vmStatText = succeeded(ctx, "vm_stat", vmStat);
  const memoryFreeBytes = vmStatText === undefined ? undefined : parseVmStat(vmStatText);
  const profileText = succeeded(ctx, "system_profiler", profile);
  if (profileText === undefined) return { devices: [], memoryFreeBytes };
  const memsizeText = succeeded(ctx, "sysctl", memsize);
  const memsizeBytes = memsizeText === undefined ? 0 : (parseWholeNumber(memsizeText) ?? 0);
  const devices = parseSystemProfilerDisplays(profileText, memsizeBytes, { onWarning: ctx.warn, memoryFreeBytes });
  return memoryFreeBytes === undefined ? { devices } : { devices, memoryFreeBytes };
}

/**
 * Vulkan GPUs: from node-llama-cpp when it is installed and has a Vulkan binary (it knows the VRAM),
 * else from `vulkaninfo --summary` (names only, listed with 0 bytes and a warning).
 */
export async function detectVulkanGpus(ctx: ProbeContext): Promise<Device[]> {
  const viaLlama = await detectVulkanWithNodeLlamaCpp({ run: ctx.run, timeoutMs: ctx.timeoutMs, onWarning: ctx.warn });
  if (viaLlama.length > 0) return viaLlama;
  const stdout = succeeded(ctx, "vulkaninfo", await runTool(ctx, "vulkaninfo", VULKANINFO_ARGS));
  if (stdout === undefined) return [];
  const devices = parseVulkanInfoSummary(stdout, { onWarning: ctx.warn });
  if (devices.length > 0) {
    ctx.warn(
      `vulkaninfo lists ${devices.map((d) => `${d.id} (${d.name})`).join(", ")} but not their memory; ` +
        "they are listed with 0 bytes until node-llama-cpp with Vulkan support is installed",
    );
  }
  return devices;
}

/** Runs a tool through the context's runner; undefined when it is missing, timed out, or the runner threw. */
async function runTool(ctx: ProbeContext, cmd: string, args: readonly string[]): Promise<CommandResult | undefined> {
  try {
    return (await ctx.run(cmd, [...args], ctx.timeoutMs)) ?? undefined;
  } catch (err) {
    ctx.warn(`${cmd} could not be run (${err instanceof Error ? err.message : String(err)}); its devices are skipped`);
    return undefined;
  }
}

/** The tool's stdout when it exited 0; otherwise a warning with what it said, and undefined. */
function succeeded(ctx: ProbeContext, cmd: string, result: CommandResult | undefined): string | undefined {
  if (result === undefined) return undefined;
  if (result.exitCode === 0) return result.stdout;
  const said = firstLine(output(result));
  ctx.warn(`${cmd} exited with code ${result.exitCode}${said === "" ? "" : `: ${said}`}; its devices are skipped`);
  return undefined;
}

function output(result: CommandResult): string {
  return `${result.stdout}\n${result.stderr ?? ""}`;
}
