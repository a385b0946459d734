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
    const extra = engine ? [`--engine=${engine}`] : [];
    // a group's coordinator: llama-server over its shards' RPC servers
    if (spec.group?.role === "coordinator") extra.push(`--group=${JSON.stringify(spec.group)}`);
    return rbeeServeCommand("llama-server", spec, ctx, extra);
  },
});

/** llama.cpp's RPC server as the machine's engines list it. */
export const RPC_SERVER_ENGINE = "ggml-rpc-server";

/**
 * A shard of a worker group: `ggml-rpc-server` lending one device to the group's coordinator
 * (a llama-server worker started with the group). Spawned by the queen as part of a group only;
 * it loads no model file of its own (the coordinator sends it its share of the tensors).
 */
export const rpcShardWorkerType: WorkerTypeDescriptor = Object.freeze<WorkerTypeDescriptor>({
  id: "rpc-shard",
  description: "a shard of a worker group: llama.cpp's ggml-rpc-server lending one device to the group's coordinator",
  capabilities: Object.freeze([] as const),
  deviceKinds: Object.freeze(["cpu", "cuda", "metal", "vulkan", "rocm"] as const),
  artifact: "none",
  engine: RPC_SERVER_ENGINE,
  installHint:
    "build it with `rbee engine build llama.cpp` (needs cmake and a C++ compiler), or register yours with `rbee engine add ggml-rpc-server <path>`",
  defaults: LLAMA_CPP_DEFAULTS,
  estimateMemory: estimateLlamaCppWorker,
  launch: (spec, ctx) => {
    const group = spec.group;
    if (group?.role !== "shard" || group.rpc_host === undefined || group.rpc_port === undefined)
      throw new Error(`worker '${spec.workerId}' is an rpc-shard without its group, RPC host and port`);
    const engine = spec.engines[RPC_SERVER_ENGINE];
    const extra = [`--group-id=${group.group_id}`, `--rpc-host=${group.rpc_host}`, `--rpc-port=${group.rpc_port}`];
    if (engine) extra.push(`--engine=${engine}`);
    // a shard loads no file: its model is its group's, by name
    return rbeeServeCommand("rpc-shard", { ...spec, modelPath: spec.modelId }, ctx, extra);
  },
});
