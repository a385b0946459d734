export { type QueenConfig, type QueenOptions, resolveQueenConfig } from "./config.js";
export { Job, type JobContext, JobStore } from "./jobs/job-store.js";
export { QUEEN_VERSION, Queen, runQueen, startQueen } from "./queen.js";
export { ClusterRegistry, DIRECT_HIVE_ID, type HiveEntry, type WorkerEntry } from "./registry/cluster-registry.js";
export { choosePlacement, estimateWorkerMemory, hiveRuns } from "./scheduler/placement.js";
export { Scheduler } from "./scheduler/scheduler.js";
export { API_KEYS_FILE, ApiKeyStore } from "./store/api-key-store.js";
export { REPLICAS_FILE, ReplicaStore } from "./store/replica-store.js";
