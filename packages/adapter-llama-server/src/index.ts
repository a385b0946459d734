export { EngineStatsPoller, type LlamaServerStats } from "./engine-stats.js";
export { LLAMA_SERVER_HINT, resolveLlamaServer } from "./find-llama-server.js";
export { type LlamaServerLaunch, llamaServerArgs } from "./llama-server-args.js";
export {
  completionBody,
  DEFAULT_ENGINE_START_TIMEOUT_MS,
  deviceLaunch,
  LlamaServerEngine,
  type LlamaServerEngineOptions,
  readChunk,
  toRbeeError,
} from "./llama-server-engine.js";
export { type LlamaServerWorkerOptions, runLlamaServerWorker } from "./run-llama-server-worker.js";
