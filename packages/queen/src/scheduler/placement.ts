import { type Device, type GgufSummary, InsufficientMemoryError } from "@rbee/contract";
import { estimateMemory } from "@rbee/gguf";
import type { HiveEntry } from "../registry/cluster-registry.js";

const MiB = 1024 * 1024;

/** The worker's defaults, which an estimate assumes unless the spawn says otherwise. */
export const DEFAULT_PARALLEL = 4;
export const MAX_DEFAULT_CONTEXT = 4096;

/**
 * Memory a worker needs for a model: from its GGUF header when the hive read it (weights, KV cache
 * for the context and parallel sequences, compute buffers, runtime); else, for a model whose header
 * is unknown, the file size plus a tenth and 64 MiB.
 */
export function estimateModelMemory(
  model: { size_bytes: number; gguf?: GgufSummary },
  o: { contextSize?: number; parallel?: number } = {},
): number {
  const g = model.gguf;
  if (g === undefined) return Math.ceil(model.size_bytes * 1.1 + 64 * MiB);
  const contextSize = o.contextSize ?? Math.min(g.context_length || MAX_DEFAULT_CONTEXT, MAX_DEFAULT_CONTEXT);
  return Math.ceil(estimateMemory(g, { contextSize, parallel: o.parallel ?? DEFAULT_PARALLEL, device: "cpu" }).total);
}

export function formatBytes(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(1)} GiB`;
  if (n >= MiB) return `${Math.round(n / MiB)} MiB`;
  return `${Math.round(n / 1024)} KiB`;
}

export interface Placement {
  hive: HiveEntry;
  device: Device;
  needBytes: number;
}

/**
 * Chooses where a worker for a model goes: among the hives that hold it, the GPU with the most free
 * memory that fits it, else the CPU if the RAM fits it. Memory already promised to workers that are
 * still loading counts as used. Nothing fits: an error naming the need and the largest free device.
 */
export function choosePlacement(
  candidates: ReadonlyArray<{ hive: HiveEntry; needBytes: number }>,
  promised: (hiveId: string, deviceId: string) => number,
  pin: { device?: string } = {},
): Placement {
  let best: Placement | undefined;
  let bestFree = -1;
  let largest: { where: string; free: number } | undefined;
  let need = 0;
  for (const { hive, needBytes } of candidates) {
    need = needBytes;
    for (const device of hive.devices) {
      if (pin.device !== undefined && device.id !== pin.device) continue;
      const free = device.memory_free - promised(hive.id, device.id);
      if (!largest || free > largest.free) largest = { where: `${device.id} on hive ${hive.id}`, free };
      if (free < need) continue;
      // any GPU that fits beats the CPU; among equals, the most free memory
      const score = (device.kind === "cpu" ? 0 : 1e18) + free;
      if (score > bestFree) {
        bestFree = score;
        best = { hive, device, needBytes: need };
      }
    }
  }
  if (best) return best;
  const where = largest
    ? `the largest free device is ${largest.where} with ${formatBytes(Math.max(0, largest.free))}`
    : "no device is known";
  throw new InsufficientMemoryError(
    `the model needs about ${formatBytes(need)} of memory and no device has that free: ${where}; stop a worker (rbee worker stop) or add a machine`,
    { need_bytes: need, largest_free_bytes: largest?.free ?? 0, largest_free_device: largest?.where ?? null },
  );
}
