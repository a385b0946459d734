import { rbeeServeCommand, type WorkerTypeDescriptor } from "@rbee/contract";

/** `ollama` as the machine's engines list it (`rbee engine add ollama <path>`, or on PATH). */
export const OLLAMA_ENGINE = "ollama";

const MiB = 1024 * 1024;

/**
 * The Ollama worker type: the rbee adapter in front of an Ollama. It attaches to a running Ollama
 * (`OLLAMA_HOST`/`RBEE_OLLAMA_URL` in the hive's environment, default http://127.0.0.1:11434), or,
 * when the hive's environment has `RBEE_OLLAMA_START=1`, starts `ollama serve` itself with the binary
 * the hive found. The model is an Ollama model name (`llama3.2:1b`), which the adapter pulls through
 * Ollama: rbee provisions nothing (artifact `none`). With no ollama binary the type is still
 * Available (`engineOptional`): attach mode needs none. This module is light: it loads no engine.
 */
export const ollamaWorkerType: WorkerTypeDescriptor = Object.freeze<WorkerTypeDescriptor>({
  id: "ollama",
  description: "Ollama behind an adapter: attaches to a running Ollama (or starts `ollama serve`), Ollama model names",
  capabilities: Object.freeze(["text-generation", "chat", "json_schema", "embeddings"] as const),
  deviceKinds: Object.freeze(["cpu", "cuda", "metal", "vulkan", "rocm"] as const),
  artifact: "none",
  engine: OLLAMA_ENGINE,
  engineOptional: true,
  installHint:
    "install Ollama (https://ollama.com/download) and run `ollama serve`, or register its binary with `rbee engine add ollama <path>`",
  defaults: Object.freeze({ maxContextSize: 4096, parallel: 4 }),
  // the model lives in Ollama's memory, which Ollama manages (and reports in /api/ps); the adapter
  // itself is a node process
  estimateMemory: (_model, o) => ({
    weights: 0,
    kv_cache: 0,
    compute: 0,
    overhead: 96 * MiB,
    total: 96 * MiB,
    context_size: o.contextSize ?? 4096,
    parallel: o.parallel ?? 4,
  }),
  launch: (spec, ctx) => {
    const engine = spec.engines[OLLAMA_ENGINE];
    // the model "file" of an Ollama worker is its Ollama model name
    return rbeeServeCommand("ollama", { ...spec, modelPath: spec.modelId }, ctx, engine ? [`--engine=${engine}`] : []);
  },
});
