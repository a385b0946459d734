export {
  capabilitiesOf,
  DEFAULT_WORKER_TYPE,
  findWorkerType,
  requireWorkerType,
  UnknownWorkerTypeError,
  WORKER_TYPES,
  workerTypeIds,
} from "./registry.js";
