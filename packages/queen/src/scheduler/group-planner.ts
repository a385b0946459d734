import { type Device, InsufficientMemoryError, RbeeError } from "@rbee/contract";
import type { HiveEntry } from "../registry/cluster-registry.js";
import { formatBytes } from "./placement.js";

/** A device that could hold a shard, with the memory placement may use on it. */
export interface ShardCandidate {
  hive: HiveEntry;
  device: Device;
  free: number;
}

/** One shard of a planned group: where it goes and its share of the model. */
export interface PlannedShard {
  hive: HiveEntry;
  device: Device;
  /** Its share of the model (llama.cpp's --tensor-split), proportional to its free memory. */
  fraction: number;
  memoryBytes: number;
}

/** `hiveA:cpu`, `hiveB:cuda:0`: a device of a hive, as `--devices` names it and group heartbeats list it. */
export function memberName(hiveId: string, deviceId: string): string {
  return `${hiveId}:${deviceId}`;
}

function refusal(needBytes: number, considered: readonly ShardCandidate[], what: string): InsufficientMemoryError {
  const available = considered.map((c) => ({
    device: memberName(c.hive.id, c.device.id),
    free_bytes: Math.max(0, c.free),
  }));
  const total = available.reduce((n, a) => n + a.free_bytes, 0);
  const list = available.map((a) => `${a.device} ${formatBytes(a.free_bytes)}`).join(", ") || "no device";
  return new InsufficientMemoryError(
    `the model needs ${formatBytes(needBytes)} and ${what} have ${formatBytes(total)} free in all (${list}): not even a worker group split over them fits; free memory or add a machine`,
    { needed_bytes: needBytes, available_bytes: total, available },
  );
}

/** Shares in proportion to free memory: every share fits where the sum does. */
function split(chosen: readonly ShardCandidate[], needBytes: number): PlannedShard[] {
  const total = chosen.reduce((n, c) => n + c.free, 0);
  return chosen.map((c) => ({
    hive: c.hive,
    device: c.device,
    fraction: Number((c.free / total).toFixed(4)),
    memoryBytes: Math.ceil((needBytes * c.free) / total),
  }));
}

/**
 * A worker group's plan: the devices its shards go to and each one's share of the model (layers and
 * KV cache alike), in proportion to free memory.
 *
 * - `asked` (`--devices hiveA:cpu,hiveB:cuda:0`): exactly those devices, in that order.
 * - Otherwise the fewest devices of one machine whose free memory together fits (RPC over loopback
 *   costs least); failing that, devices of several machines (the hives a queen knows are taken to
 *   share a LAN), the most free first, until the sum fits.
 *
 * @throws InsufficientMemoryError (503) with what the model needs and what each device has free,
 *   when even their sum is short; RbeeError 400 `device_not_found` for a device asked for that no
 *   live hive has.
 */
export function planGroup(
  candidates: readonly ShardCandidate[],
  needBytes: number,
  asked?: ReadonlyArray<{ hive: string; device: string }>,
): PlannedShard[] {
  if (asked !== undefined) {
    const chosen = asked.map((a) => {
      const found = candidates.find((c) => c.hive.id === a.hive && c.device.id === a.device);
      if (found === undefined)
        throw new RbeeError(
          `device ${memberName(a.hive, a.device)} is not a device of a live hive that can run a shard (ggml-rpc-server); see \`rbee status\``,
          { statusCode: 400, code: "device_not_found", param: "devices" },
        );
      return found;
    });
    if (new Set(chosen.map((c) => memberName(c.hive.id, c.device.id))).size !== chosen.length)
      throw new RbeeError("a device is named twice in devices; each device holds one shard of a group", {
        statusCode: 400,
        code: "invalid_request",
        param: "devices",
      });
    if (chosen.reduce((n, c) => n + Math.max(0, c.free), 0) < needBytes)
      throw refusal(needBytes, chosen, "the devices asked for");
    return split(chosen, needBytes);
  }
  const usable = candidates.filter((c) => c.free > 0).sort((a, b) => b.free - a.free);
  const byHive = new Map<string, ShardCandidate[]>();
  for (const c of usable) byHive.set(c.hive.id, [...(byHive.get(c.hive.id) ?? []), c]);
  let best: ShardCandidate[] | undefined;
  for (const devices of byHive.values()) {
    const chosen = fewestThatFit(devices, needBytes);
    if (chosen && chosen.length > 1 && (best === undefined || chosen.length < best.length)) best = chosen;
  }
  best ??= fewestThatFit(usable, needBytes);
  if (best === undefined || best.length < 2) throw refusal(needBytes, candidates, "the devices of the live hives");
  return split(best, needBytes);
}

/** The most free devices first, until their sum fits; undefined when all of them do not. */
function fewestThatFit(sorted: readonly ShardCandidate[], needBytes: number): ShardCandidate[] | undefined {
  const chosen: ShardCandidate[] = [];
  let sum = 0;
  for (const c of sorted) {
    chosen.push(c);
    sum += c.free;
    if (sum >= needBytes) return chosen;
  }
  return undefined;
}
