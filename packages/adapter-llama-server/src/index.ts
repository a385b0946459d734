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
export { RPC_SERVER_HINT, RpcShardEngine, type RpcShardEngineOptions } from "./rpc-shard-engine.js";
export { type LlamaServerWorkerOptions, runLlamaServerWorker } from "./run-llama-server-worker.js";
export { type RpcShardWorkerOptions, runRpcShardWorker } from "./run-rpc-shard-worker.js";
