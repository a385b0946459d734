/**
 * GGUF v3 constants and types (see ggml's docs/gguf.md). Everything is little-endian:
 * magic "GGUF", version u32, tensor_count u64, kv_count u64, the key/value pairs
 * (string key, u32 value type, value), the tensor infos (string name, u32 n_dims,
 * u64 dims[] fastest-varying first, u32 ggml type, u64 offset relative to the data section),
 * zero padding to `general.alignment` (default 32), then the tensor data, each tensor
 * starting at an aligned offset. Strings are a u64 byte length followed by UTF-8 bytes.
 */

/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;

/** The GGUF version current writers produce (readers accept 2 and 3). */
export const GGUF_VERSION = 3;

/** The tensor data alignment when a file does not set `general.alignment`. */
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** The type tag of a metadata value. */
export const GgufType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufType = (typeof GgufType)[keyof typeof GgufType];

/** A metadata value as JavaScript holds it: 64-bit integers are bigints, arrays JS arrays. */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** A scalar (non-array) metadata type. */
export type GgufScalarType = Exclude<GgufType, typeof GgufType.ARRAY>;

/** One typed key/value pair, exactly as stored (so it can be copied into another file unchanged). */
export type GgufKv =
  | { key: string; type: GgufScalarType; value: GgufValue }
  | { key: string; type: typeof GgufType.ARRAY; arrayType: GgufScalarType; value: GgufValue[] };

/** A tensor's description in the header. */
export interface GgufTensorInfo {
  name: string;
  /** Dimensions, fastest-varying first (token_embd.weight is [n_embd, n_vocab]). */
  dims: number[];
  /** The ggml type id (0 = F32, 1 = F16, ...; see GGML_TYPES). */
  type: number;
  /** Byte offset of the data, relative to the start of the data section. */
  offset: number;
}

/** Rounds `n` up to a multiple of `alignment`. */
export function alignUp(n: number, alignment: number): number {
  const rest = n % alignment;
  return rest === 0 ? n : n + alignment - rest;
}
