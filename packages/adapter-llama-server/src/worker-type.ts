import { LLAMA_CPP_DEFAULTS, rbeeServeCommand, type WorkerTypeDescriptor } from "@rbee/contract";
import { estimateLlamaCppWorker } from "@rbee/gguf";

/** llama-server as the machine's engines list it (`rbee engine build llama.cpp`, `rbee engine add`, PATH). */
export const LLAMA_SERVER_ENGINE = "llama-server";

/**
 * The llama-server worker type: llama.cpp's own server, started and watched by the rbee adapter
 * (`rbee worker serve llama-server --engine=<path> ...`), continuous batching over `--parallel`
 * slots. Its binary comes from the machine's engines. This module is light: it loads no engine.
 */
export const llamaServerWorkerType: WorkerTypeDescriptor = Object.freeze<WorkerTypeDescriptor>({
  id: "llama-server",
  description: "llama.cpp's own llama-server behind an adapter: GGUF models, continuous batching",
  capabilities: Object.freeze(["text-generation", "chat", "json_schema", "embeddings"] as const),
  deviceKinds: Object.freeze(["cpu", "cuda", "metal", "vulkan", "rocm"] as const),
  artifact: "gguf",
  engine: LLAMA_SERVER_ENGINE,
  installHint:
    "build it with `rbee engine build llama.cpp` (needs cmake and a C++ compiler), or register yours with `rbee engine add llama-server <path>`",
  defaults: LLAMA_CPP_DEFAULTS,
  // llama.cpp's own memory, as for the llm worker; the adapter's node process is the llm worker's too
  estimateMemory: estimateLlamaCppWorker,
  launch: (spec, ctx) => {
    const engine = spec.engines[LLAMA_SERVER_ENGINE];
    return rbeeServeCommand("llama-server", spec, ctx, engine ? [`--engine=${engine}`] : []);
  },
});
