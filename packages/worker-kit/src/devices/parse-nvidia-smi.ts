import type { Device } from "@rbee/contract";
import type { ParseOptions } from "./types.js";
import { MIB, parseWholeNumber } from "./units.js";

/** The columns asked of `nvidia-smi`, in the order {@link parseNvidiaSmi} reads them. */
export const NVIDIA_SMI_FIELDS = Object.freeze([
  "index",
  "name",
  "memory.total",
  "memory.used",
  "memory.free",
  "driver_version",
  "compute_cap",
] as const);

/** The exact arguments detection passes to `nvidia-smi` (memory in MiB, no header, no units). */
export const NVIDIA_SMI_ARGS: readonly string[] = Object.freeze([
  `--query-gpu=${NVIDIA_SMI_FIELDS.join(",")}`,
  "--format=csv,noheader,nounits",
]);

/**
 * The same query without `compute_cap`, for drivers older than 510 that answer
 * `Field "compute_cap" is not a valid field to query.` (exit code 2) to {@link NVIDIA_SMI_ARGS}.
 */
export const NVIDIA_SMI_LEGACY_ARGS: readonly string[] = Object.freeze([
  `--query-gpu=${NVIDIA_SMI_FIELDS.filter((f) => f !== "compute_cap").join(",")}`,
  "--format=csv,noheader,nounits",
]);

export interface NvidiaSmiParseOptions extends ParseOptions {
  /**
   * The machine's memory, for GPUs that share it and report no memory of their own (DGX Spark's
   * GB10 answers `[N/A]` to every `memory.*` field). Without it such a GPU is listed with 0 bytes.
   */
  systemMemory?: { total: number; free: number };
}

/**
 * Reads the output of `nvidia-smi` run with {@link NVIDIA_SMI_ARGS} (or {@link NVIDIA_SMI_LEGACY_ARGS})
 * into `cuda:<index>` devices, sorted by index. MiB become bytes. Fields printed as `[N/A]` or
 * `[Not Supported]` are left out (driver, compute capability) or handled (memory, see
 * {@link NvidiaSmiParseOptions.systemMemory}); blank lines and extra spaces are ignored. A line that
 * cannot be read is skipped and reported through `onWarning`. Never throws.
 */
export function parseNvidiaSmi(csv: string, options: NvidiaSmiParseOptions = {}): Device[] {
  const warn = options.onWarning ?? (() => {});
  const lines = csv.split(/\r?\n/).filter((line) => line.trim() !== "");
  if (lines.length === 0) {
    warn("nvidia-smi printed nothing; no NVIDIA GPU is listed");
    return [];
  }
  const devices = new Map<number, Device>();
  for (const line of lines) {
    const device = parseLine(line, options, warn);
    if (device === undefined) continue;
    const index = Number(device.id.slice("cuda:".length));
    if (devices.has(index)) warn(`nvidia-smi listed GPU ${index} twice; the last line is kept`);
    devices.set(index, device);
  }
  return [...devices.entries()].sort(([a], [b]) => a - b).map(([, device]) => device);
}

function parseLine(line: string, options: NvidiaSmiParseOptions, warn: (message: string) => void): Device | undefined {
  const fields = line.split(",").map((field) => field.trim());
  // Seven columns with compute_cap, six without (legacy); a name holding commas makes more.
  if (fields.length < 6) {
    warn(`nvidia-smi printed a line that is not '${NVIDIA_SMI_FIELDS.join(", ")}': ${JSON.stringify(line.trim())}`);
    return undefined;
  }
  const tail = fields.length === 6 ? 4 : 5;
  const index = parseWholeNumber(fields[0]);
  if (index === undefined || index > 999) {
    warn(`nvidia-smi printed a line without a GPU index: ${JSON.stringify(line.trim())}`);
    return undefined;
  }
  const rest = fields.slice(fields.length - tail);
  const name =
    fields
      .slice(1, fields.length - tail)
      .join(", ")
      .trim() || `NVIDIA GPU ${index}`;
  const [total, used, free, driver, computeCap] = rest;
  const device: Device = {
    id: `cuda:${index}`,
    kind: "cuda",
    name,
    ...memoryOf(index, name, total, used, free, options, warn),
  };
  const driverVersion = reported(driver);
  if (driverVersion !== undefined) device.driver_version = driverVersion;
  const capability = reported(computeCap);
  if (capability !== undefined) device.compute_capability = capability;
  return device;
}

type Memory = Pick<Device, "memory_total" | "memory_used" | "memory_free" | "unified_memory">;

function memoryOf(
  index: number,
  name: string,
  totalText: string | undefined,
  usedText: string | undefined,
  freeText: string | undefined,
  options: NvidiaSmiParseOptions,
  warn: (message: string) => void,
): Memory {
  const total = mib(totalText);
  if (total === undefined) return sharedMemory(index, name, options, warn);
  const cap = (bytes: number | undefined) => (bytes === undefined ? undefined : Math.min(bytes, total));
  const used = cap(mib(usedText));
  const free = cap(mib(freeText));
  if (used === undefined && free === undefined) {
    warn(`nvidia-smi reports no memory use for GPU ${index} (${name}); all of its memory is taken as free`);
  }
  // nvidia-smi's used + free can be less than total (memory the driver reserves): keep its own figures.
  return {
    memory_total: total,
    memory_used: used ?? total - (free ?? total),
    memory_free: free ?? total - (used ?? 0),
  };
}

function sharedMemory(
  index: number,
  name: string,
  options: NvidiaSmiParseOptions,
  warn: (message: string) => void,
): Memory {
  const system = options.systemMemory;
  if (system === undefined) {
    warn(`nvidia-smi reports no memory for GPU ${index} (${name}); it is listed with 0 bytes`);
    return { memory_total: 0, memory_used: 0, memory_free: 0 };
  }
  const free = Math.min(system.free, system.total);
  return { memory_total: system.total, memory_used: system.total - free, memory_free: free, unified_memory: true };
}

function mib(text: string | undefined): number | undefined {
  const value = parseWholeNumber(text);
  return value === undefined ? undefined : value * MIB;
}

/** The field, unless nvidia-smi printed a placeholder such as `[N/A]` or `[Not Supported]`. */
function reported(text: string | undefined): string | undefined {
  if (text === undefined || text === "") return undefined;
  return /^\[.*\]$|^N\/A$/i.test(text) ? undefined : text;
}
