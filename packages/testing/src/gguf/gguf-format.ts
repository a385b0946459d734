/**
 * The GGUF format as the writers here use it. The format itself (constants, value types, tensor
 * infos) lives in @rbee/gguf; this module adds the tensor types the random-weight writers produce.
 */
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
} from "@rbee/gguf";

/** The ggml tensor types this module writes (F32, F16); @rbee/gguf's GGML_TYPES knows them all. */
export const GgmlType = {
  F32: 0,
  F16: 1,
} as const;
export type GgmlType = (typeof GgmlType)[keyof typeof GgmlType];

/** Bytes per element of the ggml types this module can size. */
export const GGML_TYPE_SIZE: Readonly<Record<GgmlType, number>> = {
  [GgmlType.F32]: 4,
  [GgmlType.F16]: 2,
};
