import { type Device, InsufficientMemoryError } from "@rbee/contract";
import type { HiveEntry } from "../registry/cluster-registry.js";

const MiB = 1024 * 1024;

/**
 * Memory a worker needs for a model file of `sizeBytes`: the weights, plus a KV cache and compute
 * buffers estimated at a tenth of them and 64 MiB of runtime. A rough figure until the GGUF header
 * is read for it (the model catalog's estimate replaces this).
 */
export function estimateModelMemory(sizeBytes: number): number {
  return Math.ceil(sizeBytes * 1.1 + 64 * MiB);
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
  candidates: ReadonlyArray<{ hive: HiveEntry; sizeBytes: number }>,
  promised: (hiveId: string, deviceId: string) => number,
  pin: { device?: string } = {},
): Placement {
  let best: Placement | undefined;
  let bestFree = -1;
  let largest: { where: string; free: number } | undefined;
  let need = 0;
  for (const { hive, sizeBytes } of candidates) {
    need = estimateModelMemory(sizeBytes);
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
