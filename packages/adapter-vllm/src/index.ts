export {
  DEFAULT_ENGINE_START_TIMEOUT_MS,
  type OpenAiEngineAdapter,
  type OpenAiEngineWorkerOptions,
  runOpenAiEngineWorker,
  visibleDevicesEnv,
} from "./run-openai-engine-worker.js";
export { vllmAdapter } from "./vllm-adapter.js";
export { readVllmStats } from "./vllm-stats.js";
export { VLLM_ENGINE, VLLM_INSTALL_HINT, vllmWorkerType } from "./worker-type.js";
