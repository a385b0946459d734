export { checkEngineBinary } from "./check-binary.js";
export { EngineClient, type EngineErrorReply, EngineHttpError, readEngineError } from "./engine-client.js";
export { EngineEndpoint } from "./engine-endpoint.js";
export {
  describeExit,
  EngineBinaryError,
  type EngineExit,
  EngineExitedError,
  EngineStartError,
  type EngineStartFacts,
  type EngineState,
} from "./engine-errors.js";
export {
  type EngineOnPortOptions,
  EngineProcess,
  type EngineProcessOptions,
  startEngineOnFreePort,
  tcpAccepts,
} from "./engine-process.js";
export {
  NDJSON_FORMAT,
  readEngineStream,
  SSE_FORMAT,
  type StreamFormat,
  type StreamItemHandler,
} from "./engine-stream.js";
export { LineSplitter, LogTail } from "./log-lines.js";
export {
  compareVersions,
  type EngineStatsSample,
  OpenAiCompatibleEngine,
  type OpenAiEngineOptions,
  type OpenAiEngineSpec,
  openAiBody,
  toRbeeError as openAiEngineError,
} from "./openai-engine.js";
export { probeEngine } from "./probe-engine.js";
export { processRss, processRssAnywhere } from "./process-memory.js";
export { parsePrometheusText } from "./prometheus-text.js";
export { refuseUnmapped } from "./refuse-unmapped.js";
export { samplingFields } from "./sampling-fields.js";
export { defaultEngineGuard, type EngineGuard, findSetpriv, type GuardedChild, spawnGuarded } from "./spawn-guarded.js";
