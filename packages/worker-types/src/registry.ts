import { comfyuiWorkerType } from "@rbee/adapter-comfyui/worker-type";
import { llamaServerWorkerType, rpcShardWorkerType } from "@rbee/adapter-llama-server/worker-type";
import { ollamaWorkerType } from "@rbee/adapter-ollama/worker-type";
import { trtllmWorkerType } from "@rbee/adapter-trtllm/worker-type";
import { vllmWorkerType } from "@rbee/adapter-vllm/worker-type";
import { RbeeError, type WorkerCapability, type WorkerTypeDescriptor } from "@rbee/contract";
import { echoWorkerType } from "@rbee/worker-echo";
import { llmWorkerType } from "@rbee/worker-llm/worker-type";

/**
 * Every worker type rbee knows, described once. The hive launches and provisions from these; the
 * queen places by their memory estimates and routes by their capabilities. A new type is one
 * package exporting its descriptor, and one line here (docs/worker-types.md).
 */
export const WORKER_TYPES: Readonly<Record<string, WorkerTypeDescriptor>> = Object.freeze({
  llm: llmWorkerType,
  "llama-server": llamaServerWorkerType,
  echo: echoWorkerType,
  ollama: ollamaWorkerType,
  vllm: vllmWorkerType,
  trtllm: trtllmWorkerType,
  "rpc-shard": rpcShardWorkerType,
  comfyui: comfyuiWorkerType,
});

/** The type a model gets when neither the request, the model nor the queen names another. */
export const DEFAULT_WORKER_TYPE = "llm";

/**
 * The type a model gets from its format when neither the request nor its minimum names one: a GGUF
 * gets the queen's default (`llm` unless RBEE_WORKER_TYPE says otherwise); a Hugging Face repo
 * (safetensors) `vllm`, or, where no hive has vLLM, another type that loads repos and is installed.
 */
export const DEFAULT_TYPE_BY_FORMAT: Readonly<Record<"hf-repo", string>> = Object.freeze({ "hf-repo": "vllm" });

/** The type an image request starts when neither the request nor the model names another. */
export const DEFAULT_IMAGE_WORKER_TYPE = "comfyui";

export function findWorkerType(id: string): WorkerTypeDescriptor | undefined {
  return Object.hasOwn(WORKER_TYPES, id) ? WORKER_TYPES[id] : undefined;
}

export function workerTypeIds(): string[] {
  return Object.keys(WORKER_TYPES);
}

/** A worker type no registry (or no hive) knows: 400, listing the ones there are. */
export class UnknownWorkerTypeError extends RbeeError {
  /** `who` says whose types `known` are, with its verb: "rbee knows", "this hive has", "the hives have". */
  constructor(id: string, known: readonly string[], who = "rbee knows") {
    super(
      `unknown worker type '${id}': ${who} ${known.length > 0 ? known.join(", ") : "none"}; see \`rbee worker types\``,
      { statusCode: 400, code: "unknown_worker_type", param: "worker_type", details: { worker_type: id, known } },
    );
  }
}

/** The descriptor of a type, or a 400 that lists the known ones. */
export function requireWorkerType(id: string): WorkerTypeDescriptor {
  const t = findWorkerType(id);
  if (t === undefined) throw new UnknownWorkerTypeError(id, workerTypeIds());
  return t;
}

/** The capabilities a worker of a type serves (an unknown type, e.g. a hand-started worker's: text generation). */
export function capabilitiesOf(typeId: string): readonly WorkerCapability[] {
  return findWorkerType(typeId)?.capabilities ?? ["text-generation", "chat"];
}
