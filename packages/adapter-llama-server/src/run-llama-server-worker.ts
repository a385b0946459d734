import { randomBytes } from "node:crypto";
import { basename } from "node:path";
import type { Device, WorkerGroupSpawn } from "@rbee/contract";
import { createLogger } from "@rbee/server-kit";
import {
  checkThreadCount,
  detectCpu,
  detectDevices,
  type EngineGuard,
  resolveDevice,
  runtimeOptionsFromFlags,
  runWorker,
  type ServeFlags,
} from "@rbee/worker-kit";
import { resolveLlamaServer } from "./find-llama-server.js";
import { LlamaServerEngine } from "./llama-server-engine.js";

/** Its own options, and the serve flags every worker type takes. */
export interface LlamaServerWorkerOptions extends ServeFlags {
  /** The llama-server binary; default RBEE_LLAMA_SERVER, `llama-server` on PATH, or one `rbee engine build` made. */
  engine?: string;
  model: string;
  modelId?: string;
  workerId?: string;
  device: string;
  threads?: number;
  ctxSize?: number;
  parallel: number;
  batchSize?: number;
  embeddings?: boolean;
  engineStartTimeoutMs?: number;
  /** How llama-server is tied to the adapter (tests force the shell guard). */
  guard?: EngineGuard;
  /** More llama-server arguments, after rbee's own. */
  engineArgs?: readonly string[];
  /** Coordinate this worker group (set by the queen through the hive). */
  group?: WorkerGroupSpawn;
}

/** The device a worker runs on: the CPU without probing for GPUs, else the one the machine's devices name `id`. */
export async function findDevice(id: string): Promise<Device> {
  const devices = id === "cpu" ? [detectCpu()] : await detectDevices();
  return resolveDevice(id, devices);
}

/** `rbee worker serve llama-server`: resolves the options, then runs the adapter until it is stopped. */
export async function runLlamaServerWorker(o: LlamaServerWorkerOptions): Promise<never> {
  const workerId = o.workerId ?? `llama-server-${randomBytes(4).toString("hex")}`;
  const modelId = o.modelId ?? basename(o.model).replace(/\.gguf$/i, "");
  const log = createLogger({ service: "worker", bindings: { worker_id: workerId } });
  let device: Device;
  let binary: string;
  try {
    device = await findDevice(o.device);
    binary = await resolveLlamaServer(o.engine, { deviceKind: device.simulated ? "cpu" : device.kind });
    if (o.threads !== undefined) checkThreadCount(o.threads);
  } catch (err) {
    process.stderr.write(`rbee worker: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const engine = new LlamaServerEngine({
    binary,
    modelPath: o.model,
    modelId,
    device,
    threads: o.threads,
    ctxSize: o.ctxSize,
    parallel: o.parallel,
    batchSize: o.batchSize,
    embeddings: o.embeddings,
    startTimeoutMs: o.engineStartTimeoutMs,
    guard: o.guard,
    extraArgs: o.engineArgs,
    group: o.group,
  });
  return runWorker(engine, runtimeOptionsFromFlags(o, { workerId, modelId, device, log }));
}
