export { float16BitsToFloat32, float32ToFloat16Bits } from "./float16.js";
export {
  type CachedModel,
  type CachedModelOptions,
  cachedGeneratedModel,
  GENERATED_MODEL_DIR,
  generateLlamaGgufOfSize,
  type LlamaGgufPlan,
  planLlamaGgufOfSize,
  SIZED_HEAD_DIM,
  type SizedLlamaGgufOptions,
} from "./generate-of-size.js";
export {
  alignUp,
  GGML_TYPE_SIZE,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgmlType,
  type GgufKv,
  type GgufScalarType,
  type GgufTensorInfo,
  GgufType,
  type GgufValue,
} from "./gguf-format.js";
export { type GgufHeader, parseGgufHeader, readGgufHeader, readGgufHeaderSync } from "./read-gguf-header.js";
export { type GgufMetadataChanges, rewriteGgufMetadata } from "./rewrite-gguf-metadata.js";
export { QWEN25_TOOLS_TEMPLATE, TEST_FIM_TOKEN_IDS, toolCallingTestModel } from "./tool-calling-model.js";
export {
  encodeGgufHeader,
  type GgufLayout,
  type GgufTensorSource,
  type WriteGgufOptions,
  writeGguf,
} from "./write-gguf.js";
export {
  type LlamaGgufConfig,
  type LlamaGgufLayout,
  type LlamaTensorType,
  llamaGgufLayout,
  type ResolvedLlamaGgufConfig,
  resolveLlamaGgufConfig,
  tokenizerKv,
  type WriteLlamaGgufOptions,
  type WrittenLlamaGguf,
  writeLlamaGguf,
} from "./write-llama-gguf.js";
