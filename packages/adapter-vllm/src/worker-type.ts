import { estimateHfRepoWorker, rbeeServeCommand, type WorkerTypeDescriptor } from "@rbee/contract";

/** `vllm` as the machine's engines list it (`rbee engine add vllm <path>`, or on PATH). */
export const VLLM_ENGINE = "vllm";

export const VLLM_INSTALL_HINT =
  "install vLLM (`pip install vllm`, https://docs.vllm.ai) so that `vllm` is on the hive's PATH, or register it with `rbee engine add vllm <path>`";

/**
 * The vLLM worker type: the rbee adapter in front of vLLM's OpenAI-compatible server. The hive starts
 * `vllm serve <repo dir>` through the adapter with the binary its worker catalog found (or, with
 * `RBEE_VLLM_URL` in the hive's environment, the adapter attaches to the vLLM running there). The
 * model is a Hugging Face repo directory (safetensors + config.json), provisioned by the hive
 * (artifact `hf-repo`); the memory estimate comes from its config.json. This module loads no engine.
 */
export const vllmWorkerType: WorkerTypeDescriptor = Object.freeze<WorkerTypeDescriptor>({
  id: "vllm",
  description: "vLLM behind an adapter: Hugging Face (safetensors) models, continuous batching, tensor parallel",
  capabilities: Object.freeze(["text-generation", "chat", "json_schema"] as const),
  deviceKinds: Object.freeze(["cuda", "rocm", "cpu"] as const),
  artifact: "hf-repo",
  engine: VLLM_ENGINE,
  installHint: VLLM_INSTALL_HINT,
  defaults: Object.freeze({ maxContextSize: 4096, parallel: 8 }),
  estimateMemory: estimateHfRepoWorker,
  // vLLM loads and compiles for minutes on a large model
  readyTimeoutMs: 15 * 60_000,
  launch: (spec, ctx) => {
    const engine = spec.engines[VLLM_ENGINE];
    return rbeeServeCommand("vllm", spec, ctx, engine ? [`--engine=${engine}`] : []);
  },
});
