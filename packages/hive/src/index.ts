export { DeviceInventory, type DeviceInventoryOptions } from "./device-inventory.js";
export {
  ModelNotAvailableError,
  WorkerExistsError,
  WorkerNotFoundError,
  WorkerStartError,
  type WorkerStartFacts,
  WorkerStoppedError,
} from "./errors.js";
export { describeExit, type ExitInfo, toWorkerExit } from "./exit-reason.js";
export { Hive, type SpawnWorkerInput, startHive } from "./hive.js";
export { HiveMetrics } from "./hive-metrics.js";
export { type HiveOptions, hiveIdFromHostname, type ResolvedHiveOptions, resolveHiveOptions } from "./hive-options.js";
export { hiveRoutes } from "./hive-routes.js";
export { type LeftoverWorker, stopLeftoverWorkers } from "./leftover-workers.js";
export type { ManagedWorker, SupervisionState, WorkerSpec } from "./managed-worker.js";
export { isPortFree, PortAllocator } from "./port-allocator.js";
export { DEFAULT_RESTART_POLICY, RestartPolicy, type RestartPolicyOptions } from "./restart-policy.js";
export { runHive } from "./run-hive.js";
export { formatLogLine, readLastLines, workerLogPath } from "./worker-log-file.js";
export { LOST_INTERVALS, STALE_INTERVALS } from "./worker-supervisor.js";
