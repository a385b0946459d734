/**
 * The ggml tensor types and llama.cpp file types. Block sizes and bytes per block are what
 * `ggml_blck_size()` and `ggml_type_size()` answer in the llama.cpp that node-llama-cpp 3.22 ships
 * (read from libggml-base.so for every type id); ids 4, 5 and 31-33, 36-38 were removed from GGUF.
 */

/** A ggml tensor type: `blockSize` elements are stored in `typeSize` bytes. */
export interface GgmlTypeInfo {
  id: number;
  name: string;
  blockSize: number;
  typeSize: number;
}

const table: Array<[id: number, name: string, blockSize: number, typeSize: number]> = [
  [0, "F32", 1, 4],
  [1, "F16", 1, 2],
  [2, "Q4_0", 32, 18],
  [3, "Q4_1", 32, 20],
  [6, "Q5_0", 32, 22],
  [7, "Q5_1", 32, 24],
  [8, "Q8_0", 32, 34],
  [9, "Q8_1", 32, 36],
  [10, "Q2_K", 256, 84],
  [11, "Q3_K", 256, 110],
  [12, "Q4_K", 256, 144],
  [13, "Q5_K", 256, 176],
  [14, "Q6_K", 256, 210],
  [15, "Q8_K", 256, 292],
  [16, "IQ2_XXS", 256, 66],
  [17, "IQ2_XS", 256, 74],
  [18, "IQ3_XXS", 256, 98],
  [19, "IQ1_S", 256, 50],
  [20, "IQ4_NL", 32, 18],
  [21, "IQ3_S", 256, 110],
  [22, "IQ2_S", 256, 82],
  [23, "IQ4_XS", 256, 136],
  [24, "I8", 1, 1],
  [25, "I16", 1, 2],
  [26, "I32", 1, 4],
  [27, "I64", 1, 8],
  [28, "F64", 1, 8],
  [29, "IQ1_M", 256, 56],
  [30, "BF16", 1, 2],
  [34, "TQ1_0", 256, 54],
  [35, "TQ2_0", 256, 66],
  [39, "MXFP4", 32, 17],
  [40, "NVFP4", 64, 36],
  [41, "Q1_0", 128, 18],
  [42, "Q2_0", 64, 18],
];

/** Every ggml type a GGUF file can hold, by id. */
export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map(
  table.map(([id, name, blockSize, typeSize]) => [id, { id, name, blockSize, typeSize }]),
);

/** The ggml type ids by name (`GgmlTypeId.Q4_K` is 12). */
export const GgmlTypeId: Readonly<Record<string, number>> = Object.fromEntries(table.map(([id, name]) => [name, id]));

/** The type's name ("Q4_K"), or `type<id>` for an id this table does not know. */
export function ggmlTypeName(type: number): string {
  return GGML_TYPES.get(type)?.name ?? `type${type}`;
}

/**
 * Bytes of a tensor of `type` with these dimensions: whole blocks along the first dimension, as
 * ggml stores rows. Throws for a type this table does not know.
 */
export function ggmlTensorBytes(type: number, dims: readonly number[]): number {
  const info = GGML_TYPES.get(type);
  if (info === undefined) throw new Error(`unknown ggml tensor type ${type}`);
  const [first = 1, ...rest] = dims;
  const rows = rest.reduce((a, b) => a * b, 1);
  return Math.ceil(first / info.blockSize) * info.typeSize * rows;
}

/** llama.cpp's `llama_ftype` names, the values of `general.file_type` (llama.h). */
const FILE_TYPES: ReadonlyMap<number, string> = new Map([
  [0, "F32"],
  [1, "F16"],
  [2, "Q4_0"],
  [3, "Q4_1"],
  [4, "Q4_1_SOME_F16"],
  [7, "Q8_0"],
  [8, "Q5_0"],
  [9, "Q5_1"],
  [10, "Q2_K"],
  [11, "Q3_K_S"],
  [12, "Q3_K_M"],
  [13, "Q3_K_L"],
  [14, "Q4_K_S"],
  [15, "Q4_K_M"],
  [16, "Q5_K_S"],
  [17, "Q5_K_M"],
  [18, "Q6_K"],
  [19, "IQ2_XXS"],
  [20, "IQ2_XS"],
  [21, "Q2_K_S"],
  [22, "IQ3_XS"],
  [23, "IQ3_XXS"],
  [24, "IQ1_S"],
  [25, "IQ4_NL"],
  [26, "IQ3_S"],
  [27, "IQ3_M"],
  [28, "IQ2_S"],
  [29, "IQ2_M"],
  [30, "IQ4_XS"],
  [31, "IQ1_M"],
  [32, "BF16"],
  [36, "TQ1_0"],
  [37, "TQ2_0"],
  [38, "MXFP4_MOE"],
  [39, "NVFP4"],
  [40, "Q1_0"],
  [41, "Q2_0"],
]);

/** The name of a `general.file_type` value ("Q4_K_M" for 15), or undefined for an unknown one. */
export function llamaFileTypeName(fileType: number): string | undefined {
  return FILE_TYPES.get(fileType & ~1024); // 1024: LLAMA_FTYPE_GUESSED
}
