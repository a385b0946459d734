import { z } from "zod";
import { Bytes, DeviceId, SafeId } from "./common.js";

/** A shard of a worker group as its coordinator reaches it: the shard worker and its RPC server. */
export const GroupShard = z.strictObject({
  worker_id: SafeId,
  hive_id: z.string().min(1),
  device: DeviceId,
  /** The shard's ggml RPC server, `host:port`. */
  rpc: z.string().regex(/^[^\s,]+:\d{1,5}$/, "must be host:port"),
  /** Bytes of the device's memory the queen planned for this shard. */
  memory_bytes: Bytes.optional(),
});
export type GroupShard = z.infer<typeof GroupShard>;

/**
 * A worker of a group (docs/worker-groups.md): a `shard` lends one device to the group through
 * llama.cpp's RPC server; the `coordinator` (a llama-server worker) runs the model over its shards,
 * split by `tensor_split`, and serves the worker contract for the whole group.
 */
export const WorkerGroupSpawn = z.strictObject({
  group_id: SafeId,
  role: z.enum(["coordinator", "shard"]),
  /**
   * A shard's RPC bind address: loopback when the whole group is on one machine, else the address
   * the queen reaches this hive at. RPC has no authentication: a wildcard address is refused.
   */
  rpc_host: z.string().min(1).optional(),
  /** A coordinator's shards, in the order of `tensor_split`. */
  shards: z.array(GroupShard).min(1).max(64).optional(),
  /** The share of the model for each shard (llama.cpp's --tensor-split), proportional to its free memory. */
  tensor_split: z.array(z.number().nonnegative()).optional(),
});
export type WorkerGroupSpawn = z.infer<typeof WorkerGroupSpawn>;
