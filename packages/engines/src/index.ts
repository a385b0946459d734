export {
  type BuildEvent,
  type BuildLlamaCppOptions,
  type BuildResult,
  type BuildStage,
  buildLlamaCpp,
  currentBuild,
  finishedBuild,
} from "./build-llama.js";
export { type CmakeProgress, parseCmakeProgress } from "./cmake-progress.js";
export { bestEngine, type EngineBinary, type ListEnginesOptions, listEngines } from "./discover.js";
export {
  BACKENDS,
  type Backend,
  BUILD_RECORD_FILE,
  buildId,
  ENGINE_IDS,
  type EngineId,
  isBackend,
  isEngineId,
  LLAMA_CPP,
  llamaCppPaths,
  PATH_NAMES,
  REGISTRY_FILE,
} from "./layout.js";
export { type LlamaCppSource, LlamaCppSourceError, llamaCppSource, parseBundleHeads } from "./llama-source.js";
export {
  DEFAULT_PROBE_TIMEOUT_MS,
  looksLikeRpcServerUsage,
  parseLlamaVersion,
  parseOllamaVersion,
  probeVersion,
  type VersionProbe,
  VersionProbeCache,
} from "./probe-version.js";
export {
  AddedEngine,
  BuiltBinary,
  EngineBuildRecord,
  EngineRegistryFile,
  RecordFileError,
} from "./records.js";
export {
  type AddEngineOptions,
  addEngine,
  EngineRefusedError,
  readAddedEngines,
  removeEngine,
  UnknownEngineError,
} from "./registry.js";
export { BuildAbortedError, BuildStepError } from "./run-logged.js";
export {
  type BackendPlan,
  BUILD_TARGETS,
  cmakeFlags,
  findToolchain,
  MissingToolError,
  MissingToolkitError,
  missingToolMessage,
  type PlanOptions,
  parseNvidiaSmiList,
  parseVulkanGpus,
  planBackends,
  type Tool,
  type Toolchain,
} from "./toolchain.js";
export { isExecutableFile, which, whichAll } from "./which.js";
