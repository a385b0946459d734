import { GGML_TYPES, ggmlTensorBytes, ggmlTypeName, llamaFileTypeName } from "./ggml-types.js";
import type { GgufValue } from "./gguf-format.js";
import type { GgufHeader } from "./header-parser.js";

/**
 * What a GGUF model is, read from its header: enough to describe it to a person and to estimate the
 * memory llama.cpp needs for it (see estimateMemory). Sizes are bytes; a number the header does not
 * give is 0 (the optional fields are left out instead).
 */
export interface GgufInfo {
  /** `general.architecture`: "llama", "qwen2", "gemma3", "phi3", ... */
  architecture: string;
  /** `general.name`, when the file has one. */
  name?: string;
  /** Weights in all tensors (element counts), extrapolated from the first part for a split model. */
  parameter_count: number;
  /** The file type name when the file says (`general.file_type`: "Q4_K_M"), else the dominant tensor type. */
  quantization: string;
  /** The `general.file_type` name ("Q4_K_M", "Q8_0", "F16"), when the file has that key. */
  file_type?: string;
  /** The ggml type holding the most bytes of weight matrices ("Q4_K", "Q8_0", "F16"). */
  dominant_tensor_type: string;
  /** Bytes per ggml type name, over all tensors of this file (this part, for a split model). */
  tensor_types: Record<string, number>;
  /** `<arch>.context_length`: the context the model was trained for. */
  context_length: number;
  /** `<arch>.block_count`: transformer layers. */
  block_count: number;
  /** `<arch>.embedding_length` (n_embd). */
  embedding_length: number;
  /** `<arch>.feed_forward_length` (n_ff; the largest, when it is given per layer). */
  feed_forward_length: number;
  /** `<arch>.attention.head_count` (the largest, when given per layer). */
  head_count: number;
  /** `<arch>.attention.head_count_kv` (grouped-query attention; the largest, when given per layer). */
  head_count_kv: number;
  /** Key/value heads of each layer, when the file gives them per layer (0 for a layer without attention). */
  head_count_kv_per_layer?: number[];
  /** `<arch>.attention.key_length`, else embedding_length / head_count. */
  key_length: number;
  /** `<arch>.attention.value_length`, else embedding_length / head_count. */
  value_length: number;
  /** `<arch>.vocab_size`, else the tokenizer's token count, else the token embedding's rows. */
  vocab_size: number;
  /** Whether the file carries a chat template (`tokenizer.chat_template`). */
  has_chat_template: boolean;
  /** Bytes of tensor data (extrapolated to all parts for a split model when its total size is given). */
  tensor_bytes: number;
  /** The file's size (all parts), as given, else as the header implies (data section start + tensor extents). */
  file_bytes: number;
  /** Bytes of `token_embd.weight`, which llama.cpp keeps in host memory even when it offloads every layer. */
  token_embd_bytes: number;
  /** True when there is no `output.weight`: the output layer reuses the token embedding. */
  output_tied: boolean;
  /** `<arch>.expert_count` of a mixture-of-experts model. */
  expert_count?: number;
  /** `<arch>.expert_used_count`: experts active per token. */
  expert_used_count?: number;
  /** `<arch>.expert_feed_forward_length`: n_ff of one expert. */
  expert_feed_forward_length?: number;
  /** `<arch>.attention.sliding_window`: tokens a sliding-window layer attends to. */
  sliding_window?: number;
  /**
   * Which layers use the sliding window (llama.cpp's per-architecture pattern, or the file's
   * `<arch>.attention.sliding_window_pattern`); absent when no layer does or the pattern is unknown
   * (then every layer is counted at full context: an overestimate).
   */
  sliding_window_layers?: boolean[];
  /** `split.count`: parts of a split model (1 for a single file). */
  split_count: number;
}

/**
 * Describes a model from its GGUF header. `fileBytes` is the size of the file (the sum of all parts
 * for a split model: then tensor_bytes and parameter_count are extrapolated from the first part).
 */
export function inspectGguf(header: GgufHeader, fileBytes?: number): GgufInfo {
  const m = header.metadata;
  const architecture = str(m.get("general.architecture")) ?? "unknown";
  const key = (k: string) => m.get(`${architecture}.${k}`);

  // tensors: bytes per type, the token embedding, the extents of the data section
  const tensorTypes: Record<string, number> = {};
  const weightTypes: Record<string, number> = {};
  let tensorBytes = 0;
  let params = 0;
  let dataEnd = 0;
  let tokenEmbdBytes = 0;
  const sorted = [...header.tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i]!;
    const elements = t.dims.reduce((a, b) => a * b, 1);
    const next = sorted[i + 1];
    const bytes = GGML_TYPES.has(t.type)
      ? ggmlTensorBytes(t.type, t.dims)
      : next
        ? next.offset - t.offset
        : Math.max(0, (fileBytes ?? 0) - header.dataOffset - t.offset);
    const type = ggmlTypeName(t.type);
    tensorTypes[type] = (tensorTypes[type] ?? 0) + bytes;
    if (t.dims.filter((d) => d > 1).length >= 2) weightTypes[type] = (weightTypes[type] ?? 0) + bytes;
    tensorBytes += bytes;
    params += elements;
    dataEnd = Math.max(dataEnd, t.offset + bytes);
    if (t.name === "token_embd.weight") tokenEmbdBytes = bytes;
  }
  const impliedFileBytes = header.tensors.length === 0 ? header.headerBytes : header.dataOffset + dataEnd;

  const splitCount = Math.max(1, int(m.get("split.count")) ?? 1);
  if (splitCount > 1) {
    // the first part's header lists only its own tensors: scale to the whole model
    const totalTensorBytes =
      fileBytes !== undefined
        ? Math.max(tensorBytes, fileBytes - splitCount * header.dataOffset)
        : tensorBytes *
          ((int(m.get("split.tensors.count")) ?? header.tensors.length) / Math.max(1, header.tensors.length));
    if (tensorBytes > 0) params = Math.round((params * totalTensorBytes) / tensorBytes);
    tensorBytes = Math.round(totalTensorBytes);
  }

  const dominant = largest(weightTypes) ?? largest(tensorTypes) ?? "unknown";
  const fileTypeValue = int(m.get("general.file_type"));
  const fileType = fileTypeValue === undefined ? undefined : llamaFileTypeName(fileTypeValue);

  const embd = maxOf(key("embedding_length")) ?? 0;
  const headCount = maxOf(key("attention.head_count")) ?? 0;
  const kvPerLayer = perLayer(key("attention.head_count_kv"));
  const headCountKv = maxOf(key("attention.head_count_kv")) ?? headCount;
  const headDim = headCount > 0 ? Math.floor(embd / headCount) : 0;
  const tokens = m.get("tokenizer.ggml.tokens");
  const tokenEmbd = header.tensors.find((t) => t.name === "token_embd.weight");
  const vocab =
    int(key("vocab_size")) ?? (Array.isArray(tokens) ? tokens.length : undefined) ?? tokenEmbd?.dims[1] ?? 0;
  const blockCount = int(key("block_count")) ?? 0;

  const info: GgufInfo = {
    architecture,
    parameter_count: params,
    quantization: fileType ?? dominant,
    dominant_tensor_type: dominant,
    tensor_types: tensorTypes,
    context_length: int(key("context_length")) ?? 0,
    block_count: blockCount,
    embedding_length: embd,
    feed_forward_length: maxOf(key("feed_forward_length")) ?? 0,
    head_count: headCount,
    head_count_kv: headCountKv,
    key_length: int(key("attention.key_length")) ?? headDim,
    value_length: int(key("attention.value_length")) ?? headDim,
    vocab_size: vocab,
    has_chat_template: typeof m.get("tokenizer.chat_template") === "string",
    tensor_bytes: tensorBytes,
    file_bytes: fileBytes ?? impliedFileBytes,
    token_embd_bytes: tokenEmbdBytes,
    output_tied:
      header.tensors.length > 0 && splitCount === 1 && !header.tensors.some((t) => t.name === "output.weight"),
    split_count: splitCount,
  };
  const name = str(m.get("general.name"));
  if (name !== undefined) info.name = name;
  if (fileType !== undefined) info.file_type = fileType;
  if (kvPerLayer !== undefined) info.head_count_kv_per_layer = kvPerLayer;
  const experts = int(key("expert_count"));
  if (experts !== undefined && experts > 0) {
    info.expert_count = experts;
    const used = int(key("expert_used_count"));
    if (used !== undefined) info.expert_used_count = used;
    const expertFf = maxOf(key("expert_feed_forward_length"));
    if (expertFf !== undefined) info.expert_feed_forward_length = expertFf;
  }
  const swa = slidingWindow(architecture, key, blockCount);
  if (swa.window !== undefined) info.sliding_window = swa.window;
  if (swa.layers !== undefined) info.sliding_window_layers = swa.layers;
  return info;
}

/**
 * llama.cpp's sliding-window layer patterns by architecture (src/models/<arch>.cpp,
 * `load_swa_pattern(ml, n, dense_first)`): with period n, layer il uses the window when
 * `il % n < n - 1` (or, dense first, when `il % n != 0`). A file's own
 * `<arch>.attention.sliding_window_pattern` (a period, or a flag per layer) wins.
 */
const SWA_PATTERNS: Readonly<Record<string, { period: number; denseFirst?: boolean; defaultWindow?: number }>> = {
  gemma2: { period: 2, defaultWindow: 4096 },
  gemma3: { period: 6 },
  gemma3n: { period: 5 },
  "gemma-embedding": { period: 6 },
  cohere2: { period: 4 },
  "gpt-oss": { period: 2 },
  exaone4: { period: 4 },
  olmo2: { period: 4 },
  mellum: { period: 4 },
  smallthinker: { period: 4, denseFirst: true },
};

function slidingWindow(
  arch: string,
  key: (k: string) => GgufValue | undefined,
  layers: number,
): { window?: number; layers?: boolean[] } {
  const known = SWA_PATTERNS[arch];
  const window = int(key("attention.sliding_window")) ?? known?.defaultWindow;
  if (window === undefined || window <= 0 || layers <= 0) return window ? { window } : {};
  const pattern = key("attention.sliding_window_pattern");
  if (Array.isArray(pattern) && pattern.length >= layers) {
    return { window, layers: pattern.slice(0, layers).map((v) => v === true || v === 1) };
  }
  const period = int(pattern) ?? known?.period;
  if (period === undefined) return { window };
  const denseFirst = known?.denseFirst === true;
  const flags = Array.from({ length: layers }, (_, il) =>
    period === 0 ? true : denseFirst ? il % period !== 0 : il % period < period - 1,
  );
  return flags.some(Boolean) ? { window, layers: flags } : { window };
}

function str(v: GgufValue | undefined): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function int(v: GgufValue | undefined): number | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return v;
  if (typeof v === "bigint") return Number(v);
  return undefined;
}

/** A number, or the largest of a per-layer array. */
function maxOf(v: GgufValue | undefined): number | undefined {
  if (Array.isArray(v)) {
    const nums = v.map(int).filter((n): n is number => n !== undefined);
    return nums.length > 0 ? Math.max(...nums) : undefined;
  }
  return int(v);
}

function perLayer(v: GgufValue | undefined): number[] | undefined {
  return Array.isArray(v) ? v.map((x) => int(x) ?? 0) : undefined;
}

function largest(bytesByType: Record<string, number>): string | undefined {
  let best: string | undefined;
  for (const [type, bytes] of Object.entries(bytesByType)) {
    if (best === undefined || bytes > (bytesByType[best] ?? 0)) best = type;
  }
  return best;
}
