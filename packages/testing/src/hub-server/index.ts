export { parseRange, type RangeRequest } from "./file-response.js";
export { gitBlobOid, lfsPointer } from "./hub-files.js";
export { startHubServer } from "./hub-server.js";
export type {
  HubFaults,
  HubFile,
  HubRepo,
  HubRequestRecord,
  HubServer,
  HubServerOptions,
  HubStats,
} from "./hub-types.js";
export {
  safetensorsRepoFiles,
  TINY_TRANSFORMER,
  type TinyTransformer,
  tinySafetensors,
  tinyTransformerParameters,
} from "./safetensors-repo.js";
