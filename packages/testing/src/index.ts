export { type ChaosReport, FAULT_KINDS, formatReport, runChaos } from "./chaos/chaos-run.js";
export { ChildHandle, type ExitInfo, runRbee, startRbee } from "./child.js";
export {
  type ConformanceCheck,
  type ConformanceOptions,
  describeWorkerConformance,
  type WorkerUnderTest,
} from "./conformance.js";
export { HiveGroup, type QueenProcess, startQueenProcess } from "./daemons.js";
export { enginesDir, findLlamaServer, requireLlamaServerOrSkip } from "./engines.js";
export * from "./fixtures/comfyui-api/index.js";
export * from "./fixtures/ollama-api/index.js";
export * from "./fixtures/openai-engine/index.js";
export * from "./fixtures/s3-api/index.js";
export {
  type FuzzBody,
  type FuzzReply,
  fuzzRequest,
  HOSTILE_IDS,
  Rng,
  randomBody,
  randomJson,
  rawExchange,
} from "./fuzz.js";
export * from "./gguf/index.js";
export { getJson, type JsonReply, type ParsedSse, postJson, postSse, runJob, waitFor } from "./http.js";
export * from "./hub-server/index.js";
export { quietLog } from "./log.js";
export { type ForwardedPort, NetworkLink } from "./network-link.js";
export * from "./paths.js";
export { trickleRequest } from "./raw-http.js";
export { inCi, requireOrSkip } from "./requirements.js";
export { makeTestCertificates, type TestCertificates } from "./tls.js";
export { type StartedWorker, startLlamaServerWorker, startLlmWorker, startWorker } from "./worker.js";
export { ECHO_PACKAGE_DIR, writeEchoPackage } from "./worker-packages.js";
