export {
  type ChatPrompt,
  type ChatPromptFormatter,
  createChatPromptFormatter,
  toChatFunctions,
  toChatHistory,
  tokenizePrompt,
} from "./chat-prompt.js";
export { LlmEngine, type LlmEngineOptions, SAMPLING_DEFAULTS } from "./llm-engine.js";
export { prewarmCpuLlama } from "./prewarm.js";
export { type LlmWorkerOptions, modelIdFromPath, runLlmWorker } from "./run-llm-worker.js";
export { type SequenceLease, SequencePool } from "./sequence-pool.js";
export { StopMatcher } from "./stop-matcher.js";
export { TokenTextDecoder } from "./token-text.js";
