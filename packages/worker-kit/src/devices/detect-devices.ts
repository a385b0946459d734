import type { Device } from "@rbee/contract";
import { readDeclaredDevicesFromEnv } from "./declared-devices.js";
import { detectCpu } from "./detect-cpu.js";
import {
  type AppleGpus,
  detectAppleGpus,
  detectNvidiaGpus,
  detectRocmGpus,
  detectVulkanGpus,
  type ProbeContext,
} from "./detect-gpus.js";
import { runCommand } from "./run-command.js";
import type { CommandRunner, WarningSink } from "./types.js";
import { vulkanLoaderPresent } from "./vulkan-loader.js";

/** How long one vendor tool may run before it is killed and its devices skipped. */
export const DEFAULT_DETECT_TIMEOUT_MS = 10_000;

export interface DetectOptions {
  /** Runs the vendor tools; the default is {@link runCommand} (execFile, no shell). Tests replay recorded outputs. */
  run?: CommandRunner;
  /** Told about every tool that failed or printed what could not be read. */
  onWarning?: WarningSink;
  /** Stands in for `process.platform`: Apple GPUs are looked for on darwin only, ROCm on linux only. */
  platform?: NodeJS.Platform;
  /**
   * `false` skips Vulkan, `true` looks for it. By default it is looked for when the Vulkan loader is
   * on this machine ({@link vulkanLoaderPresent}), or when `run` replays recorded tools. Vulkan is
   * only looked at when no CUDA, ROCm or Metal GPU was found: those are the same GPUs.
   */
  vulkan?: boolean;
  /**
   * A declared (simulated) inventory used instead of GPU detection; the CPU is still detected unless
   * the list has "cpu". When undefined, `RBEE_DEVICES` in {@link env} is read instead (see RBEE_DEVICES_ENV).
   */
  declared?: Device[];
  /** The environment to read `RBEE_DEVICES` from; `process.env` by default. */
  env?: NodeJS.ProcessEnv;
  /** Time limit per tool, in ms. */
  timeoutMs?: number;
}

/**
 * Lists this machine's compute devices: the CPU first, then NVIDIA (`nvidia-smi`), AMD (`rocm-smi`),
 * Apple (`system_profiler`, darwin only) and, when none of those found a GPU, Vulkan GPUs.
 *
 * A declared inventory (`options.declared`, else the `RBEE_DEVICES` environment variable, a JSON
 * array as `parseDeclaredDevices` reads it) replaces GPU detection: the tools are not run.
 *
 * Detection itself never throws: a tool that is missing contributes nothing; one that fails, times
 * out or prints what cannot be read contributes nothing and is reported through `onWarning`.
 *
 * @throws ValidationError only when `RBEE_DEVICES` is set but invalid: a declared inventory that is
 *   silently ignored would make a test or a plan run on the wrong machine.
 */
export async function detectDevices(options: DetectOptions = {}): Promise<Device[]> {
  const declared = options.declared ?? readDeclaredDevicesFromEnv(options.env ?? process.env);
  if (declared !== undefined) return withDeclared(declared);

  const warn = options.onWarning ?? (() => {});
  const ctx: ProbeContext = {
    run: options.run ?? ((cmd, args, ms) => runCommand(cmd, args, ms, warn)),
    timeoutMs: options.timeoutMs ?? DEFAULT_DETECT_TIMEOUT_MS,
    warn,
  };
  const platform = options.platform ?? process.platform;
  let cpu = detectCpu();
  const noAppleGpus: AppleGpus = { devices: [] };
  const [cuda, rocm, apple] = await Promise.all([
    platform === "darwin" ? [] : detectNvidiaGpus(ctx, cpu),
    platform === "linux" ? detectRocmGpus(ctx) : [],
    platform === "darwin" ? detectAppleGpus(ctx) : noAppleGpus,
  ]);
  if (apple.memoryFreeBytes !== undefined) cpu = withMemoryFree(cpu, apple.memoryFreeBytes);
  const gpus = [...cuda, ...rocm, ...apple.devices];
  const vulkanWanted =
    options.vulkan ?? (options.run !== undefined || vulkanLoaderPresent(platform, options.env ?? process.env));
  const lookForVulkan = gpus.length === 0 && vulkanWanted && platform !== "darwin";
  const vulkan = lookForVulkan ? await detectVulkanGpus(ctx) : [];
  return [cpu, ...gpus, ...vulkan];
}

/** The declared devices, after the real CPU unless they declare one; "cpu" always first. */
function withDeclared(declared: readonly Device[]): Device[] {
  const cpu = declared.find((d) => d.id === "cpu") ?? detectCpu();
  return [cpu, ...declared.filter((d) => d.id !== "cpu")];
}

/** The CPU with a better figure for free memory (macOS `os.freemem()` leaves out reclaimable pages). */
function withMemoryFree(cpu: Device, free: number): Device {
  const memoryFree = Math.min(Math.max(free, 0), cpu.memory_total);
  return { ...cpu, memory_free: memoryFree, memory_used: cpu.memory_total - memoryFree };
}
