export {
  capabilitiesOf,
  DEFAULT_IMAGE_WORKER_TYPE,
  DEFAULT_WORKER_TYPE,
  findWorkerType,
  requireWorkerType,
  UnknownWorkerTypeError,
  WORKER_TYPES,
  workerTypeIds,
} from "./registry.js";
