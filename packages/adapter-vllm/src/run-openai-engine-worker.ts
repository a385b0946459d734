import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_OPENAI_ENGINE_START_TIMEOUT_MS, type Device, RbeeError } from "@rbee/contract";
import { bestEngine, type EngineId, listEngines } from "@rbee/engines";
import { createLogger } from "@rbee/server-kit";
import {
  detectCpu,
  detectDevices,
  type EngineGuard,
  OpenAiCompatibleEngine,
  type OpenAiEngineSpec,
  resolveDevice,
  runtimeOptionsFromFlags,
  runWorker,
  type ServeFlags,
} from "@rbee/worker-kit";

/** What `rbee worker serve vllm|trtllm` takes: the serve flags every type takes, and the engine's own. */
export interface OpenAiEngineWorkerOptions extends ServeFlags {
  /** The model: a Hugging Face repo directory (what the hive provisions), or a repo id the engine fetches itself. */
  model: string;
  modelId?: string;
  workerId?: string;
  /** One device, or several (comma-separated, `cuda:0,cuda:1`): tensor parallel over them. */
  device: string;
  ctxSize?: number;
  parallel: number;
  /** Attach to the engine at this URL instead of starting one. */
  engineUrl?: string;
  /** The engine's program for start mode (default: its environment variable, `rbee engine add`, PATH). */
  engine?: string;
  /** Tensor-parallel size; default the number of devices given. */
  tensorParallel?: number;
  engineStartTimeoutMs?: number;
  engineArgs?: string[];
  guard?: EngineGuard;
  env?: NodeJS.ProcessEnv;
}

/** How one OpenAI-compatible engine is found, started and read. */
export interface OpenAiEngineAdapter {
  spec: OpenAiEngineSpec;
  /** Its id among the machine's engines. */
  engineId: EngineId;
  /** The environment variables naming its URL (attach) and its program (start). */
  urlEnv: string;
  binaryEnv: string;
  /** The name the engine serves the model under when started with these; default the worker's model id. */
  servedName?(model: string, modelId: string): string;
  /** Its command line for a start: the model, the name to serve it under, the port, the devices. */
  args(o: {
    model: string;
    servedName: string;
    port: number;
    tensorParallel: number;
    ctxSize?: number;
    parallel: number;
    device: Device;
  }): string[];
}

/** `cuda:0,cuda:1` → the devices; each must exist here, and all be of one kind. */
async function findDevices(ids: string): Promise<Device[]> {
  const wanted = ids
    .split(",")
    .map((d) => d.trim())
    .filter((d) => d !== "");
  const here = wanted.every((w) => w === "cpu") ? [detectCpu()] : await detectDevices();
  const devices = wanted.map((w) => resolveDevice(w, here));
  if (new Set(devices.map((d) => d.kind)).size > 1)
    throw new RbeeError(`--device ${ids}: the devices of one worker must be of one kind`, {
      statusCode: 400,
      code: "invalid_request",
    });
  return devices;
}

/** The variable that makes only these GPUs visible to the engine (its tensor-parallel ranks). */
export function visibleDevicesEnv(devices: readonly Device[]): Record<string, string> {
  const kind = devices[0]?.kind;
  const indexes = devices.map((d) => d.id.split(":")[1] ?? "0").join(",");
  if (kind === "cuda") return { CUDA_VISIBLE_DEVICES: indexes };
  if (kind === "rocm") return { HIP_VISIBLE_DEVICES: indexes };
  return {};
}

/** The engine's program for start mode: given, else its variable, else the best of the machine's engines. */
async function resolveBinary(
  adapter: OpenAiEngineAdapter,
  given: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  const chosen = given ?? env[adapter.binaryEnv];
  if (chosen !== undefined && chosen !== "") return chosen;
  const engines = await listEngines({ env });
  const best = bestEngine(engines, adapter.engineId);
  if (best) return best.path;
  const broken = engines.filter((e) => e.id === adapter.engineId && e.status === "broken");
  const where =
    broken.length > 0
      ? `the ones found do not work: ${broken.map((e) => `${e.path} (${e.error})`).join("; ")}`
      : `none added, none on PATH, ${adapter.binaryEnv} not set`;
  throw new RbeeError(
    `no working ${adapter.engineId} found (${where}); attach to a running one with --${adapter.spec.name}-url (or ${adapter.urlEnv}), or ${adapter.spec.hint}`,
    { statusCode: 400, code: "engine_not_found" },
  );
}

/** Runs an OpenAI-compatible engine's adapter until it is stopped: attach (a URL) or start (a program). */
export async function runOpenAiEngineWorker(
  adapter: OpenAiEngineAdapter,
  o: OpenAiEngineWorkerOptions,
): Promise<never> {
  const env = o.env ?? process.env;
  const name = adapter.spec.name;
  const workerId = o.workerId ?? `${adapter.spec.workerType}-${randomBytes(4).toString("hex")}`;
  const modelId =
    o.modelId ??
    (o.model
      .split("/")
      .filter((p) => p !== "")
      .at(-1) as string);
  const log = createLogger({ service: "worker", bindings: { worker_id: workerId } });
  const url = o.engineUrl ?? (env[adapter.urlEnv] || undefined);
  let devices: Device[];
  let binary: string | undefined;
  try {
    devices = await findDevices(o.device);
    if (url === undefined) binary = await resolveBinary(adapter, o.engine, env);
  } catch (err) {
    process.stderr.write(`rbee worker: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const device = devices[0] as Device;
  const gpus = devices.filter((d) => d.kind !== "cpu");
  const tensorParallel = o.tensorParallel ?? Math.max(1, gpus.length);
  // attach mode: the engine serves the model under the name it was started with (-m)
  const servedName = url !== undefined ? o.model : (adapter.servedName?.(o.model, modelId) ?? modelId);
  const engine = new OpenAiCompatibleEngine(adapter.spec, {
    servedModel: servedName,
    servedAliases: url !== undefined ? repoNames(o.model) : [],
    modelId,
    device,
    parallel: o.parallel,
    ctxSize: o.ctxSize,
    ...(binary !== undefined
      ? {
          start: {
            binary,
            args: (port: number) => [
              ...adapter.args({
                model: o.model,
                servedName,
                port,
                tensorParallel,
                ctxSize: o.ctxSize,
                parallel: o.parallel,
                device,
              }),
              ...(o.engineArgs ?? []),
            ],
            env: visibleDevicesEnv(gpus),
            startTimeoutMs: o.engineStartTimeoutMs ?? DEFAULT_ENGINE_START_TIMEOUT_MS,
            guard: o.guard,
          },
        }
      : { url }),
  });
  log.info(
    { engine: name, mode: url === undefined ? "start" : "attach", tensor_parallel: tensorParallel },
    `${name} adapter`,
  );
  return runWorker(engine, runtimeOptionsFromFlags(o, { workerId, modelId, device, log }));
}

/**
 * The Hugging Face repo a hive's catalog entry says a model directory holds (`<cache>/models/<id>/`,
 * its metadata.json's artifact name, `owner/name`): the name a vLLM started on that repo serves by
 * default. None for anything else.
 */
function repoNames(model: string): string[] {
  try {
    const meta = JSON.parse(readFileSync(join(model, "metadata.json"), "utf8")) as { artifact?: { name?: unknown } };
    return typeof meta.artifact?.name === "string" ? [meta.artifact.name] : [];
  } catch {
    return [];
  }
}

/** How long an engine may take to be ready (below the vllm/trtllm types' 15-minute ready timeout in the hive). */
export const DEFAULT_ENGINE_START_TIMEOUT_MS = DEFAULT_OPENAI_ENGINE_START_TIMEOUT_MS;
