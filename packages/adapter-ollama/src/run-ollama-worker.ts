import { randomBytes } from "node:crypto";
import type { Device } from "@rbee/contract";
import { createLogger } from "@rbee/server-kit";
import {
  detectCpu,
  detectDevices,
  type EngineGuard,
  resolveDevice,
  runtimeOptionsFromFlags,
  runWorker,
  type ServeFlags,
} from "@rbee/worker-kit";
import { ollamaUrlFromHost, resolveOllama } from "./find-ollama.js";
import { DEFAULT_OLLAMA_URL, OllamaEngine } from "./ollama-engine.js";

/** Its own options, and the serve flags every worker type takes. */
export interface OllamaWorkerOptions extends ServeFlags {
  /** The Ollama model name (`llama3.2:1b`). */
  model: string;
  modelId?: string;
  workerId?: string;
  device: string;
  ctxSize?: number;
  parallel: number;
  /** Attach to this Ollama (default: OLLAMA_HOST as Ollama reads it, else http://127.0.0.1:11434). */
  ollamaUrl?: string;
  /** Start `ollama serve` instead of attaching (also RBEE_OLLAMA_START=1). */
  start?: boolean;
  /** The ollama binary for --start (default RBEE_OLLAMA, `rbee engine add ollama`, PATH). */
  engine?: string;
  keepAlive?: string;
  engineStartTimeoutMs?: number;
  guard?: EngineGuard;
  env?: NodeJS.ProcessEnv;
}

/** Attach or start: --start or RBEE_OLLAMA_START=1 starts; otherwise the adapter attaches. */
export function ollamaMode(
  o: Pick<OllamaWorkerOptions, "start" | "ollamaUrl">,
  env: NodeJS.ProcessEnv,
): "start" | "attach" {
  if (o.start === true) return "start";
  if (o.ollamaUrl === undefined && env.RBEE_OLLAMA_START === "1") return "start";
  return "attach";
}

async function findDevice(id: string): Promise<Device> {
  const devices = id === "cpu" ? [detectCpu()] : await detectDevices();
  return resolveDevice(id, devices);
}

/** `rbee worker serve ollama`: resolves the options, then runs the adapter until it is stopped. */
export async function runOllamaWorker(o: OllamaWorkerOptions): Promise<never> {
  const env = o.env ?? process.env;
  const workerId = o.workerId ?? `ollama-${randomBytes(4).toString("hex")}`;
  const modelId = o.modelId ?? o.model;
  const log = createLogger({ service: "worker", bindings: { worker_id: workerId } });
  const mode = ollamaMode(o, env);
  let device: Device;
  let binary: string | undefined;
  try {
    device = await findDevice(o.device);
    if (mode === "start") binary = await resolveOllama(o.engine, env);
  } catch (err) {
    process.stderr.write(`rbee worker: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const url = o.ollamaUrl ?? env.RBEE_OLLAMA_URL ?? ollamaUrlFromHost(env.OLLAMA_HOST) ?? DEFAULT_OLLAMA_URL;
  const engine = new OllamaEngine({
    model: o.model,
    modelId,
    device,
    parallel: o.parallel,
    ctxSize: o.ctxSize,
    keepAlive: o.keepAlive ?? env.RBEE_OLLAMA_KEEP_ALIVE,
    ...(binary !== undefined ? { start: { binary, startTimeoutMs: o.engineStartTimeoutMs, guard: o.guard } } : { url }),
  });
  return runWorker(engine, runtimeOptionsFromFlags(o, { workerId, modelId, device, log }));
}
