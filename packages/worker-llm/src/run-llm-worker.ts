import { randomBytes } from "node:crypto";
import { basename } from "node:path";
import type { Device } from "@rbee/contract";
import { createLogger } from "@rbee/server-kit";
import {
  checkThreadCount,
  detectCpu,
  detectDevices,
  resolveDevice,
  runtimeOptionsFromFlags,
  runWorker,
  type ServeFlags,
} from "@rbee/worker-kit";
import { LlmEngine } from "./llm-engine.js";

/** Its own options, and the serve flags every worker type takes. */
export interface LlmWorkerOptions extends ServeFlags {
  model: string;
  modelId?: string;
  workerId?: string;
  device: string;
  threads?: number;
  ctxSize?: number;
  parallel: number;
  batchSize?: number;
}

/** The model id a path is served under when none is given: the file name without `.gguf`. */
export function modelIdFromPath(path: string): string {
  return basename(path).replace(/\.gguf$/i, "");
}

async function findDevice(id: string): Promise<Device> {
  const devices = id === "cpu" ? [detectCpu()] : await detectDevices();
  return resolveDevice(id, devices);
}

/** `rbee worker serve llm`: resolves the options, then runs the worker until it is stopped. */
export async function runLlmWorker(o: LlmWorkerOptions): Promise<never> {
  const workerId = o.workerId ?? `llm-${randomBytes(4).toString("hex")}`;
  const modelId = o.modelId ?? modelIdFromPath(o.model);
  const log = createLogger({ service: "worker", bindings: { worker_id: workerId } });
  let device: Device;
  try {
    device = await findDevice(o.device);
    if (o.threads !== undefined) checkThreadCount(o.threads);
  } catch (err) {
    process.stderr.write(`rbee worker: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const engine = new LlmEngine({
    modelPath: o.model,
    modelId,
    device,
    threads: o.threads,
    ctxSize: o.ctxSize,
    parallel: o.parallel,
    batchSize: o.batchSize,
  });
  return runWorker(engine, runtimeOptionsFromFlags(o, { workerId, modelId, device, log }));
}
