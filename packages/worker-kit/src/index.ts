export * from "./adapter/index.js";
export { Admission } from "./admission.js";
export * from "./devices/index.js";
export type {
  ImageContext,
  ImageResult,
  InferContext,
  InferResult,
  LoadContext,
  LoadedModel,
  WorkerEngine,
} from "./engine.js";
export { HeartbeatTask, type HeartbeatTaskOptions } from "./heartbeat.js";
export { modelFileSize } from "./model-file.js";
export { runWorker } from "./run-worker.js";
export { runtimeOptionsFromFlags, type ServeFlags } from "./serve-flags.js";
export { WorkerStatusMachine } from "./status.js";
export { BYTES_PER_THREAD, checkThreadCount, chooseThreadCount, type ThreadChoice } from "./threads.js";
export { workerConfig } from "./worker-config.js";
export { WorkerMetrics } from "./worker-metrics.js";
export { resolveWorkerOptions } from "./worker-options.js";
export { WorkerRuntime, type WorkerRuntimeOptions } from "./worker-runtime.js";
