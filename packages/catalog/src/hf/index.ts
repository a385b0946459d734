export { findInHfCache } from "./hf-cache.js";
export { HfClient, type HfClientOptions, type HfFile, type HfResolvedFile } from "./hf-client.js";
export { DEFAULT_HF_ENDPOINT, hfEndpoint, hfHome, hfHubCache, hfToken } from "./hf-env.js";
export { HfAuthError, HfNotFoundError, HfProtocolError, HfUnavailableError } from "./hf-errors.js";
export { type GgufPick, NoGgufError, type PickGgufOptions, pickGguf } from "./pick-gguf.js";
export { pickRepoFiles } from "./pick-repo-files.js";
export { isQuantName, QUANT_PREFERENCE, quantOfFileName } from "./quant.js";
export {
  assertRepoId,
  assertRepoPath,
  assertRevision,
  repoIdProblem,
  repoPathProblem,
  revisionProblem,
} from "./repo-names.js";
export { safetensorsParameters } from "./safetensors-header.js";
export { findShortName, SHORT_MODEL_NAMES, type ShortModelName } from "./short-names.js";
