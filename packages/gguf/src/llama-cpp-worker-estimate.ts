import {
  type DeviceKind,
  defaultContextSize,
  LLAMA_CPP_DEFAULTS,
  type MemoryEstimate,
  type ModelFacts,
} from "@rbee/contract";
import { estimateMemory } from "./estimate-memory.js";

const MiB = 1024 * 1024;

/**
 * The memory a llama.cpp worker (in-process or llama-server) needs for a model on a kind of device:
 * from the GGUF header when it is known (weights, KV cache for the context and parallel sequences,
 * compute buffers; on a GPU the backend's own context too); else, for a model whose header is
 * unknown, the file size plus a tenth and 64 MiB. Context per sequence defaults to the model's, at
 * most 4096, and parallel sequences to 4 (LLAMA_CPP_DEFAULTS), as the workers themselves default.
 */
export function estimateLlamaCppWorker(
  model: ModelFacts,
  o: { deviceKind: DeviceKind; contextSize?: number; parallel?: number },
): MemoryEstimate {
  const g = model.gguf;
  const parallel = o.parallel ?? LLAMA_CPP_DEFAULTS.parallel;
  const contextSize = o.contextSize ?? defaultContextSize(g?.context_length);
  if (g === undefined) {
    const total = Math.ceil(model.size_bytes * 1.1 + 64 * MiB);
    const weights = model.size_bytes;
    return { weights, kv_cache: 0, compute: 0, overhead: total - weights, total, context_size: contextSize, parallel };
  }
  const e = estimateMemory(g, { contextSize, parallel, device: o.deviceKind === "cpu" ? "cpu" : "gpu" });
  return {
    weights: e.weights,
    kv_cache: e.kvCache,
    compute: e.compute,
    overhead: e.overhead,
    total: e.total,
    context_size: contextSize,
    parallel,
  };
}
