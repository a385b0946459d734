import { estimateHfRepoWorker, rbeeServeCommand, type WorkerTypeDescriptor } from "@rbee/contract";

/** `trtllm-serve` as the machine's engines list it (`rbee engine add trtllm-serve <path>`, or on PATH). */
export const TRTLLM_ENGINE = "trtllm-serve";

export const TRTLLM_INSTALL_HINT =
  "install TensorRT-LLM (`pip install tensorrt_llm`, https://nvidia.github.io/TensorRT-LLM) so that `trtllm-serve` is on the hive's PATH, or register it with `rbee engine add trtllm-serve <path>`";

/**
 * The TensorRT-LLM worker type: the rbee adapter in front of `trtllm-serve`, TensorRT-LLM's
 * OpenAI-compatible server (PyTorch backend), on NVIDIA GPUs. Like vLLM it loads a Hugging Face repo
 * directory (artifact `hf-repo`), estimated from its config.json. This module loads no engine.
 */
export const trtllmWorkerType: WorkerTypeDescriptor = Object.freeze<WorkerTypeDescriptor>({
  id: "trtllm",
  description: "TensorRT-LLM's trtllm-serve behind an adapter: Hugging Face models on NVIDIA GPUs, in-flight batching",
  capabilities: Object.freeze(["text-generation", "chat"] as const),
  deviceKinds: Object.freeze(["cuda"] as const),
  artifact: "hf-repo",
  engine: TRTLLM_ENGINE,
  installHint: TRTLLM_INSTALL_HINT,
  defaults: Object.freeze({ maxContextSize: 4096, parallel: 8 }),
  estimateMemory: estimateHfRepoWorker,
  readyTimeoutMs: 15 * 60_000,
  launch: (spec, ctx) => {
    const engine = spec.engines[TRTLLM_ENGINE];
    return rbeeServeCommand("trtllm", spec, ctx, engine ? [`--engine=${engine}`] : []);
  },
});
