export { ollamaUrlFromHost, resolveOllama } from "./find-ollama.js";
export {
  DEFAULT_OLLAMA_START_TIMEOUT_MS,
  DEFAULT_OLLAMA_URL,
  OLLAMA_HINT,
  OllamaEngine,
  type OllamaEngineOptions,
  ollamaBody,
  toRbeeError,
} from "./ollama-engine.js";
export { type OllamaWorkerOptions, ollamaMode, runOllamaWorker } from "./run-ollama-worker.js";
export { OLLAMA_ENGINE, ollamaWorkerType } from "./worker-type.js";
