export {
  capabilitiesOf,
  DEFAULT_IMAGE_WORKER_TYPE,
  DEFAULT_TYPE_BY_FORMAT,
  DEFAULT_WORKER_TYPE,
  findWorkerType,
  requireWorkerType,
  UnknownWorkerTypeError,
  WORKER_TYPES,
  workerTypeIds,
} from "./registry.js";
