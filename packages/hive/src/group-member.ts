import { type LaunchSpec, ValidationError, type WorkerGroupSpawn } from "@rbee/contract";
import { freePort, isWildcardHost } from "@rbee/server-kit";

/**
 * A worker group's member as this hive starts it. A shard must be an `rpc-shard` worker whose RPC
 * server binds one address of this machine (loopback, or the one the queen reaches the hive at),
 * never a wildcard: llama.cpp's RPC protocol has no authentication. Its port is chosen here, once,
 * and kept across restarts, so that the group's coordinator finds a restarted shard where it was.
 * A coordinator must be a `llama-server` worker that names its shards.
 * @throws ValidationError (400) for any other combination, and for an address not of this machine.
 */
export async function groupMember(group: WorkerGroupSpawn, workerType: string): Promise<LaunchSpec["group"]> {
  if (group.role === "coordinator") {
    if (workerType !== "llama-server")
      throw new ValidationError(
        `a worker group's coordinator is a llama-server worker, not ${workerType}`,
        "worker_type",
      );
    if (group.shards === undefined || group.shards.length === 0)
      throw new ValidationError("a worker group's coordinator needs its shards", "group.shards");
    return group;
  }
  if (workerType !== "rpc-shard")
    throw new ValidationError(`a worker group's shard is an rpc-shard worker, not ${workerType}`, "worker_type");
  const host = group.rpc_host ?? "127.0.0.1";
  if (isWildcardHost(host))
    throw new ValidationError(
      `a shard's RPC server may not bind '${host}': llama.cpp's RPC has no authentication, so a shard binds loopback (a group on one machine) or the one address the queen reaches this hive at; see docs/worker-groups.md`,
      "group.rpc_host",
    );
  let port: number;
  try {
    port = await freePort(host);
  } catch (err) {
    throw new ValidationError(
      `a shard's RPC server cannot bind '${host}' on this machine (${(err as Error).message}); give an address of this machine`,
      "group.rpc_host",
    );
  }
  return { ...group, rpc_host: host, rpc_port: port };
}
