export { GgufFormatError, RemoteFileError } from "./errors.js";
export {
  estimateMemory,
  GPU_RUNTIME_OVERHEAD,
  type KvCacheType,
  type MemoryEstimate,
  type MemoryEstimateInput,
  type MemoryEstimateOptions,
} from "./estimate-memory.js";
export { formatBytes } from "./format-bytes.js";
export {
  GGML_TYPES,
  GgmlTypeId,
  type GgmlTypeInfo,
  ggmlTensorBytes,
  ggmlTypeName,
  llamaFileTypeName,
} from "./ggml-types.js";
export {
  alignUp,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  type GgufKv,
  type GgufScalarType,
  type GgufTensorInfo,
  GgufType,
  type GgufValue,
} from "./gguf-format.js";
export type { GgufHeader } from "./header-parser.js";
export { type GgufInfo, inspectGguf } from "./inspect-gguf.js";
export { estimateLlamaCppWorker } from "./llama-cpp-worker-estimate.js";
export {
  type GgufHeaderRead,
  type GgufSource,
  parseGgufHeader,
  type RemoteSource,
  readGgufHeader,
  readGgufHeaderSync,
} from "./read-gguf-header.js";
