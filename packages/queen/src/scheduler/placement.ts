import {
  type Device,
  type DeviceKind,
  type GgufSummary,
  InsufficientMemoryError,
  type PlacementPolicy,
  RbeeError,
  type WorkerType,
} from "@rbee/contract";
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
  /** The hive already holds the model file (else it fetches it first). */
  hasModel: boolean;
  workerType: WorkerType;
}

export interface PlacementCandidate {
  hive: HiveEntry;
  needBytes: number;
  hasModel: boolean;
}

/** What placement must know of the cluster beyond the hives' last heartbeats. */
export interface DeviceLoad {
  /** Memory of the workers rbee runs on a device (their estimates), which its free figure may or may not show yet. */
  reserved(hiveId: string, deviceId: string): number;
  /** Memory promised to workers still being spawned on a device, which its free figure cannot show yet. */
  promised(hiveId: string, deviceId: string): number;
  /** Workers of the model being placed already on a hive (spread puts replicas apart). */
  replicas(hiveId: string): number;
}

export interface PlacementOptions {
  policy?: PlacementPolicy;
  /** Only this device id (rbee worker spawn --device). */
  device?: string;
  workerType?: WorkerType;
}

/**
 * The worker type that serves a model on a kind of device. The llm worker (llama.cpp) runs on every
 * kind rbee knows: CPU, CUDA, Metal, Vulkan, and ROCm through Vulkan.
 */
const WORKER_TYPES: Record<DeviceKind, readonly WorkerType[]> = {
  cpu: ["llm"],
  cuda: ["llm"],
  metal: ["llm"],
  vulkan: ["llm"],
  rocm: ["llm"],
};

export function workerTypeFor(kind: DeviceKind, wanted?: WorkerType): WorkerType | undefined {
  const types = WORKER_TYPES[kind];
  return wanted === undefined ? types[0] : types.includes(wanted) ? wanted : undefined;
}

/**
 * Free memory of a device for placement. A measured device's free figure shows loaded workers once it
 * is measured again, so the smaller of it and what rbee's own workers leave counts; a declared
 * (simulated) device's figure never changes, so all of rbee's workers come off it.
 */
export function usableMemory(hive: HiveEntry, device: Device, load: Omit<DeviceLoad, "replicas">): number {
  const reserved = load.reserved(hive.id, device.id);
  const promised = load.promised(hive.id, device.id);
  if (device.simulated) return device.memory_free - reserved - promised;
  return Math.min(device.memory_free, device.memory_total - reserved) - promised;
}

/**
 * Chooses where a worker for a model goes, among devices where it fits (memory committed to workers
 * that are loading, or loaded but not yet in the device's figures, counts as used):
 * - `spread` (default): hives with fewer workers of this model first (replicas apart), then hives that
 *   hold the file, then GPUs before the CPU, then the most free memory;
 * - `pack`: hives that hold the file, then GPUs, then the least free memory that fits.
 * Nothing fits: an error naming the need and the largest free device.
 */
export function choosePlacement(
  candidates: ReadonlyArray<PlacementCandidate>,
  load: DeviceLoad,
  o: PlacementOptions = {},
): Placement {
  const policy = o.policy ?? "spread";
  let best: { placement: Placement; key: number[] } | undefined;
  let largest: { where: string; free: number } | undefined;
  let need = 0;
  for (const { hive, needBytes, hasModel } of candidates) {
    need = needBytes;
    const replicas = load.replicas(hive.id);
    for (const device of hive.devices) {
      if (o.device !== undefined && device.id !== o.device) continue;
      const workerType = workerTypeFor(device.kind, o.workerType);
      if (workerType === undefined) continue;
      const free = usableMemory(hive, device, load);
      if (!largest || free > largest.free) largest = { where: `${device.id} on hive ${hive.id}`, free };
      if (free < needBytes) continue;
      const gpu = device.kind === "cpu" ? 0 : 1;
      const key = policy === "spread" ? [-replicas, hasModel ? 1 : 0, gpu, free] : [hasModel ? 1 : 0, gpu, -free];
      if (!best || compareKeys(key, best.key) > 0) {
        best = { placement: { hive, device, needBytes, hasModel, workerType }, key };
      }
    }
  }
  if (best) return best.placement;
  if (largest === undefined && o.device !== undefined) {
    const hives = candidates.map((c) => c.hive.id).join(", ") || "none";
    throw new RbeeError(
      `no connected hive that could run it has device ${o.device} (hives: ${hives}); see \`rbee status\``,
      {
        statusCode: 400,
        code: "device_not_found",
        param: "device",
      },
    );
  }
  const where = largest
    ? `the largest free device is ${largest.where} with ${formatBytes(Math.max(0, largest.free))}`
    : "no device is known";
  throw new InsufficientMemoryError(
    `the model needs about ${formatBytes(need)} of memory and no device has that free: ${where}; stop a worker (rbee worker stop) or add a machine`,
    { need_bytes: need, largest_free_bytes: largest?.free ?? 0, largest_free_device: largest?.where ?? null },
  );
}

/** Lexicographic comparison of two keys of the same length: positive when `a` is better. */
function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
