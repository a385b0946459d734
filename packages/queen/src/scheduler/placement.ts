import {
  type Device,
  type DeviceKind,
  InsufficientMemoryError,
  type ModelFacts,
  type PlacementPolicy,
  RbeeError,
  type WorkerTypeDescriptor,
} from "@rbee/contract";
import { DEFAULT_WORKER_TYPE, findWorkerType } from "@rbee/worker-types";
import type { HiveEntry } from "../registry/cluster-registry.js";

/**
 * Placement: which device of which hive a new worker goes to. This is the one place that answers
 * "which device": `deviceOptions` lists the devices a worker of a type could use, with what it
 * needs and what is free there; `choosePlacement` ranks those where it fits (spread or pack), and
 * eviction (eviction.ts) looks at the same list for room to make. It does not start anything, and
 * does not choose among running workers (leases.ts).
 */

const MiB = 1024 * 1024;

/** Memory a worker of a type needs for a model on a kind of device, from the type's own estimate. */
export function estimateWorkerMemory(
  type: WorkerTypeDescriptor,
  model: ModelFacts,
  deviceKind: DeviceKind,
  o: { contextSize?: number | undefined; parallel?: number | undefined } = {},
): number {
  return Math.ceil(type.estimateMemory(model, { deviceKind, contextSize: o.contextSize, parallel: o.parallel }).total);
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
  workerType: string;
}

export interface PlacementCandidate {
  hive: HiveEntry;
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
  /** The worker type to place (default: the llm worker). */
  workerType?: WorkerTypeDescriptor;
  /** Bytes a worker needs on a device: the type's estimate for the model on that kind of device. */
  need: (device: Device) => number;
  /** Hives left out of the choice (the spawn is pinned to another) that run the type, for the error. */
  elsewhere?: (type: WorkerTypeDescriptor) => string[];
}

/** The type placement assumes when none is named. */
function defaultType(): WorkerTypeDescriptor {
  return findWorkerType(DEFAULT_WORKER_TYPE) as WorkerTypeDescriptor;
}

/**
 * Whether a hive can run a worker type on a device, by its worker catalog: the type is Available
 * there and runs on that kind of device (a declared, simulated device takes any kind the type runs
 * on: its workers run on the CPU). A hive too old to report a catalog runs the llm worker.
 */
export function hiveRuns(
  hive: HiveEntry,
  type: WorkerTypeDescriptor,
  device: Pick<Device, "kind" | "simulated">,
): boolean {
  if (!type.deviceKinds.includes(device.kind)) return false;
  if (hive.workerTypes === undefined) return type.id === "llm";
  const entry = hive.workerTypes.find((t) => t.id === type.id);
  if (entry?.status !== "Available") return false;
  return device.simulated === true || (entry.runs_on ?? entry.device_kinds).includes(device.kind);
}

/** Whether a hive runs a worker type on at least one of its devices. */
export function hiveRunsAnywhere(hive: HiveEntry, type: WorkerTypeDescriptor): boolean {
  return hive.devices.some((d) => hiveRuns(hive, type, d));
}

/**
 * Why no candidate hive can run a type at all: 409 naming the hives that have it (none, here) and
 * what each of the others said about it (its engine missing, and how to install it).
 */
export function typeNotInstalledError(
  type: WorkerTypeDescriptor,
  hives: readonly HiveEntry[],
  /** Hives outside the choice (a spawn pinned to another) that do run it. */
  elsewhere: readonly string[] = [],
): RbeeError {
  const why = hives.map((h) => {
    const entry = h.workerTypes?.find((t) => t.id === type.id);
    if (entry === undefined) return `hive ${h.id}: not in its catalog (an older rbee?)`;
    if (entry.status !== "Available") return `hive ${h.id}: ${entry.error ?? entry.status}`;
    return `hive ${h.id}: runs it on ${(entry.runs_on ?? []).join(", ") || "no device kind"} only`;
  });
  const others = elsewhere.length > 0 ? `; it runs on hive ${elsewhere.join(", ")}` : "";
  return new RbeeError(
    `${elsewhere.length > 0 ? "the hive chosen cannot" : "no connected hive can"} run worker type '${type.id}' (${why.join("; ") || "no hive is connected"})${others}; install it there (rbee engine build, rbee engine add), or choose another type or hive (rbee worker types)`,
    { statusCode: 409, code: "worker_type_not_installed", param: "worker_type", details: { worker_type: type.id } },
  );
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

/** A device a worker could go to, with what it would need there and what placement may use of it now. */
export interface DeviceOption {
  hive: HiveEntry;
  device: Device;
  hasModel: boolean;
  /** Bytes the worker needs on this device (its type's estimate for this kind of device). */
  needBytes: number;
  /** Memory placement may use on it now (usableMemory). */
  free: number;
}

/**
 * The devices of the candidate hives that run the type (and are the one pinned, if one is), in
 * the candidates' order, with what the worker needs on each and what is free there.
 */
export function deviceOptions(
  candidates: ReadonlyArray<PlacementCandidate>,
  load: Omit<DeviceLoad, "replicas">,
  o: Pick<PlacementOptions, "device" | "need"> & { workerType: WorkerTypeDescriptor },
): DeviceOption[] {
  const out: DeviceOption[] = [];
  for (const { hive, hasModel } of candidates) {
    for (const device of hive.devices) {
      if (!hiveRuns(hive, o.workerType, device)) continue;
      if (o.device !== undefined && device.id !== o.device) continue;
      out.push({ hive, device, hasModel, needBytes: o.need(device), free: usableMemory(hive, device, load) });
    }
  }
  return out;
}

/**
 * Chooses where a worker for a model goes, among devices of hives that run its type, where it fits
 * (memory committed to workers that are loading, or loaded but not yet in the device's figures,
 * counts as used):
 * - `spread` (default): hives with fewer workers of this model first (replicas apart), then hives that
 *   hold the file, then GPUs before the CPU, then the most free memory;
 * - `pack`: hives that hold the file, then GPUs, then the least free memory that fits.
 * Nothing fits: an error naming the need and the largest free device; no hive runs the type: 409.
 */
export function choosePlacement(
  candidates: ReadonlyArray<PlacementCandidate>,
  load: DeviceLoad,
  o: PlacementOptions,
): Placement {
  const policy = o.policy ?? "spread";
  const type = o.workerType ?? defaultType();
  let best: { placement: Placement; key: number[] } | undefined;
  let largest: { where: string; free: number; need: number } | undefined;
  const replicas = new Map<string, number>();
  for (const { hive, device, hasModel, needBytes, free } of deviceOptions(candidates, load, {
    ...o,
    workerType: type,
  })) {
    if (!largest || free > largest.free) largest = { where: `${device.id} on hive ${hive.id}`, free, need: needBytes };
    if (free < needBytes) continue;
    if (!replicas.has(hive.id)) replicas.set(hive.id, load.replicas(hive.id));
    const gpu = device.kind === "cpu" ? 0 : 1;
    const key =
      policy === "spread"
        ? [-(replicas.get(hive.id) ?? 0), hasModel ? 1 : 0, gpu, free]
        : [hasModel ? 1 : 0, gpu, -free];
    if (!best || compareKeys(key, best.key) > 0) {
      best = { placement: { hive, device, needBytes, hasModel, workerType: type.id }, key };
    }
  }
  if (best) return best.placement;
  if (candidates.length > 0 && !candidates.some((c) => hiveRunsAnywhere(c.hive, type)))
    throw typeNotInstalledError(
      type,
      candidates.map((c) => c.hive),
      o.elsewhere?.(type),
    );
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
  const need = largest?.need ?? 0;
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
