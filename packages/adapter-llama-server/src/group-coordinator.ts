import type { WorkerGroupSpawn, WorkerHeartbeat } from "@rbee/contract";
import { RbeeError } from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import { tcpAccepts } from "@rbee/worker-kit";

/**
 * llama-server's arguments for a group's coordinator: its shards' RPC servers (`--rpc`), every
 * layer offloaded to them (`--device RPC0,RPC1,...`, `--n-gpu-layers 999`, so that nothing but the
 * token embedding stays with the coordinator), split in the planned proportions (`--tensor-split`).
 */
export function coordinatorArgs(group: WorkerGroupSpawn): string[] {
  const shards = group.shards ?? [];
  if (shards.length === 0) throw new Error(`worker group ${group.group_id}: a coordinator needs its shards`);
  const args = [
    "--rpc",
    shards.map((s) => s.rpc).join(","),
    "--device",
    shards.map((_, i) => `RPC${i}`).join(","),
    "--n-gpu-layers",
    "999",
  ];
  const split = group.tensor_split;
  if (split !== undefined && split.length === shards.length) args.push("--tensor-split", split.join(","));
  return args;
}

/**
 * Waits until every shard's RPC server accepts connections: a coordinator restarted after a shard
 * died (llama.cpp's RPC client aborts the whole llama-server then) starts llama-server only once the
 * shard is back, rather than failing again while its hive restarts it.
 */
export async function waitForShards(
  group: WorkerGroupSpawn,
  o: { timeoutMs: number; signal: AbortSignal; log: Logger },
): Promise<void> {
  const deadline = performance.now() + o.timeoutMs;
  let told = false;
  for (;;) {
    const down: string[] = [];
    for (const s of group.shards ?? [])
      if (!(await tcpAccepts(`tcp://${s.rpc}`, 1000))) down.push(`${s.worker_id} (${s.rpc})`);
    if (down.length === 0) return;
    if (!told) o.log.warn({ group_id: group.group_id, waiting_for: down }, "waiting for the group's shards");
    told = true;
    if (o.signal.aborted || performance.now() > deadline)
      throw new RbeeError(
        `worker group ${group.group_id}: shard ${down.join(", ")} did not accept connections within ${Math.round(o.timeoutMs / 1000)} s`,
        { statusCode: 503, code: "worker_unavailable", retryable: true },
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The group fields of a coordinator's heartbeat (docs/worker-groups.md). */
export function coordinatorHeartbeat(group: WorkerGroupSpawn, workerId: string): Partial<WorkerHeartbeat> {
  const shards = group.shards ?? [];
  const devices = shards.map((s) => `${s.hive_id}:${s.device}`);
  const perDevice: Record<string, number> = {};
  shards.forEach((s, i) => {
    perDevice[devices[i] as string] = (perDevice[devices[i] as string] ?? 0) + (s.memory_bytes ?? 0);
  });
  return {
    group_id: group.group_id,
    role: "coordinator",
    coordinator: workerId,
    devices,
    vram_per_device: perDevice,
    // a coordinator that serves has every shard: llama-server aborts when one goes away
    group_health: "healthy",
    shard_workers: shards.map((s) => ({ worker_id: s.worker_id, status: "Ready" as const })),
  };
}
