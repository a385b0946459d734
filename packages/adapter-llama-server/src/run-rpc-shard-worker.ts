import { randomBytes } from "node:crypto";
import type { Device } from "@rbee/contract";
import { bestEngine, listEngines } from "@rbee/engines";
import { createLogger } from "@rbee/server-kit";
import { runtimeOptionsFromFlags, runWorker, type ServeFlags } from "@rbee/worker-kit";
import { RPC_SERVER_HINT, RpcShardEngine } from "./rpc-shard-engine.js";
import { findDevice, type LlamaServerWorkerOptions } from "./run-llama-server-worker.js";

/** The llama-server adapter's own options that a shard takes too (`engine` is ggml-rpc-server here), and its group's. */
export interface RpcShardWorkerOptions
  extends ServeFlags,
    Pick<LlamaServerWorkerOptions, "model" | "modelId" | "workerId" | "device" | "threads" | "guard"> {
  /** The ggml-rpc-server binary; default the best of the machine's engines. */
  engine?: string;
  groupId: string;
  rpcHost: string;
  rpcPort: number;
}

/** `rbee worker serve rpc-shard`: one shard of a worker group, until it is stopped. */
export async function runRpcShardWorker(o: RpcShardWorkerOptions): Promise<never> {
  const workerId = o.workerId ?? `rpc-shard-${randomBytes(4).toString("hex")}`;
  const modelId = o.modelId ?? o.model;
  const log = createLogger({ service: "worker", bindings: { worker_id: workerId } });
  let device: Device;
  let binary: string;
  let engine: RpcShardEngine;
  try {
    device = await findDevice(o.device);
    const found = o.engine ?? bestEngine(await listEngines({ env: process.env }), "ggml-rpc-server")?.path;
    if (found === undefined) throw new Error(`no working ggml-rpc-server found: ${RPC_SERVER_HINT}`);
    binary = found;
    engine = new RpcShardEngine({
      binary,
      modelId,
      device,
      groupId: o.groupId,
      rpcHost: o.rpcHost,
      rpcPort: o.rpcPort,
      threads: o.threads,
      guard: o.guard,
    });
  } catch (err) {
    process.stderr.write(`rbee worker: ${(err as Error).message}\n`);
    process.exit(1);
  }
  return runWorker(engine, runtimeOptionsFromFlags(o, { workerId, modelId, device, log }));
}
