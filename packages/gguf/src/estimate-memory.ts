/**
 * What estimateMemory reads: the fields of GgufInfo it needs. The contract's GgufSummary (what a hive
 * reports) fits too; the optional fields make the estimate closer when they are there.
 */
export interface MemoryEstimateInput {
  tensor_bytes: number;
  block_count: number;
  embedding_length: number;
  head_count: number;
  head_count_kv: number;
  key_length?: number | undefined;
  value_length?: number | undefined;
  vocab_size?: number | undefined;
  parameter_count?: number | undefined;
  feed_forward_length?: number | undefined;
  head_count_kv_per_layer?: number[] | undefined;
  expert_count?: number | undefined;
  expert_used_count?: number | undefined;
  expert_feed_forward_length?: number | undefined;
  sliding_window?: number | undefined;
  sliding_window_layers?: boolean[] | undefined;
  token_embd_bytes?: number | undefined;
  output_tied?: boolean | undefined;
}

/** The element type of the KV cache (llama.cpp's `--cache-type-k/-v`). */
export type KvCacheType = "f32" | "f16" | "bf16" | "q8_0" | "q4_0";

export interface MemoryEstimateOptions {
  /** Tokens of context per sequence (node-llama-cpp's `contextSize`; llama-server's `-c` divided by `-np`). */
  contextSize: number;
  /** Sequences decoded in parallel, each with its own `contextSize` of KV cache. */
  parallel: number;
  /** Default "f16", llama.cpp's default. */
  kvCacheType?: KvCacheType;
  /** Where the model runs: "gpu" counts what lands in the GPU's memory when every layer is offloaded. */
  device: "cpu" | "gpu";
  /** Tokens per batch (n_batch = n_ubatch). Default 512, llama.cpp's and the llm worker's default. */
  batchSize?: number;
  /** Default true: llama.cpp's `auto` turns flash attention on for CPU, CUDA, Metal and Vulkan. */
  flashAttention?: boolean;
  /**
   * Bytes the runtime takes besides llama.cpp's buffers. Default 0 on a CPU (the worker process
   * itself, about 100 MiB of RSS, is not counted), 457 MiB on a GPU (the CUDA/ROCm context; the
   * figure Ollama reserves per GPU).
   */
  runtimeOverhead?: number;
}

/** Bytes a worker needs for a model: what llama.cpp allocates, by buffer. */
export interface MemoryEstimate {
  /** The model's tensors (mapped from the file on a CPU; on a GPU, all but the token embedding). */
  weights: number;
  /** K and V for every layer, for `parallel` sequences of `contextSize` tokens. */
  kvCache: number;
  /** The compute buffer llama.cpp reserves for the worst-case batch. */
  compute: number;
  /** The logits buffer (CPU) and the runtime allowance (see `runtimeOverhead`). */
  overhead: number;
  total: number;
}

const MiB = 1024 * 1024;

/** The allowance for a GPU backend's own context (Ollama's `cudaMinimumMemory`, discover/gpu.go). */
export const GPU_RUNTIME_OVERHEAD = 457 * MiB;

const KV_BYTES: Readonly<Record<KvCacheType, number>> = {
  f32: 4,
  f16: 2,
  bf16: 2,
  q8_0: 34 / 32,
  q4_0: 18 / 32,
};

/** llama.cpp pads context sizes to 256 cells (llama-context.cpp, llama-kv-cache-iswa.cpp). */
const pad256 = (n: number) => Math.ceil(n / 256) * 256;

/**
 * Estimates the memory llama.cpp allocates to run a model, calibrated against what llama.cpp
 * itself logs (`CPU_Mapped model buffer size`, `CPU KV buffer size`, `CPU compute buffer size`,
 * `CPU output buffer size`) through node-llama-cpp 3.22 (see packages/gguf/README.md):
 *
 * - weights = tensor bytes (on a GPU, minus the token embedding, which stays in host memory).
 * - cells: n_ctx = pad256(contextSize × parallel), per sequence n_ctx_seq = pad256(n_ctx / parallel);
 *   sliding-window layers keep pad256(min(n_ctx_seq, window + n_ubatch)) per sequence.
 * - kvCache = Σ over layers of cells × n_head_kv × (key_length + value_length) × bytes(kvCacheType)
 *   (grouped-query attention through n_head_kv; per-layer head counts when the file has them).
 * - compute, per token of the ubatch (n_ubatch = min(batchSize, n_ctx)), the larger of the layer
 *   phase, 4·(3·n_ff + 4·n_embd) + 2·n_ctx_seq bytes (activations and the f16 attention mask), and
 *   the output phase, 4·(n_vocab + 2·n_embd) bytes (the logits of a whole ubatch). Without flash
 *   attention the layer phase holds the f32 KQ matrix instead: 4·(2·n_ff + n_embd) + n_ctx_seq·(4·n_head + 4).
 * - overhead = the logits buffer, 4·n_vocab·parallel bytes, on a CPU; plus `runtimeOverhead`.
 */
export function estimateMemory(info: MemoryEstimateInput, options: MemoryEstimateOptions): MemoryEstimate {
  const { contextSize, parallel, device } = options;
  if (!(contextSize > 0) || !(parallel > 0)) {
    throw new RangeError(`contextSize and parallel must be positive, got ${contextSize} and ${parallel}`);
  }
  const kvBytes = KV_BYTES[options.kvCacheType ?? "f16"];
  const layers = Math.max(0, info.block_count);
  const embd = Math.max(0, info.embedding_length);
  const heads = Math.max(0, info.head_count);
  const headDim = heads > 0 ? Math.floor(embd / heads) : 0;
  const keyLength = info.key_length || headDim;
  const valueLength = info.value_length || headDim;
  const vocab = info.vocab_size ?? 0;

  // context cells, as llama.cpp pads them
  const nCtx = pad256(Math.ceil(contextSize) * parallel);
  const nCtxSeq = pad256(Math.floor(nCtx / parallel));
  const nUbatch = Math.min(options.batchSize ?? 512, nCtx);
  const window = info.sliding_window ?? 0;
  const swaCellsPerSeq = window > 0 ? pad256(Math.min(nCtxSeq, window + nUbatch)) : nCtxSeq;
  const swaLayers = window > 0 ? info.sliding_window_layers : undefined;

  let kvCache = 0;
  for (let il = 0; il < layers; il++) {
    const kvHeads = info.head_count_kv_per_layer?.[il] ?? info.head_count_kv;
    const cells = (swaLayers?.[il] === true ? swaCellsPerSeq : nCtxSeq) * parallel;
    kvCache += cells * kvHeads * (keyLength + valueLength) * kvBytes;
  }

  const ff = feedForwardWidth(info);
  const hasSwa = swaLayers?.some(Boolean) === true;
  const maskKv = nCtxSeq + (hasSwa ? swaCellsPerSeq : 0);
  const outputPhase = 4 * (vocab + 2 * embd);
  const layerPhase =
    options.flashAttention === false
      ? Math.max(4 * (2 * ff + embd) + maskKv * (4 * heads + 4), 4 * (3 * ff + 4 * embd))
      : 4 * (3 * ff + 4 * embd) + 2 * maskKv;
  const compute = nUbatch * Math.max(layerPhase, outputPhase);

  const hostWeightsOnly = device === "gpu" && info.output_tied !== true ? (info.token_embd_bytes ?? 0) : 0;
  const weights = Math.max(0, info.tensor_bytes - hostWeightsOnly);
  const runtime = options.runtimeOverhead ?? (device === "gpu" ? GPU_RUNTIME_OVERHEAD : 0);
  const logits = device === "cpu" ? 4 * vocab * parallel : 0;
  const overhead = logits + runtime;

  const out = {
    weights: Math.ceil(weights),
    kvCache: Math.ceil(kvCache),
    compute: Math.ceil(compute),
    overhead: Math.ceil(overhead),
  };
  return { ...out, total: out.weights + out.kvCache + out.compute + out.overhead };
}

/**
 * The width of the feed-forward activations: n_ff, or for a mixture of experts the active experts'
 * (n_expert_used × n_ff_exp); when the header did not say, derived from the parameter count (a llama
 * block has 3·n_embd·n_ff feed-forward weights), else 4·n_embd.
 */
function feedForwardWidth(info: MemoryEstimateInput): number {
  const dense = info.feed_forward_length ?? 0;
  const moe =
    info.expert_count && info.expert_used_count && info.expert_feed_forward_length
      ? info.expert_used_count * info.expert_feed_forward_length
      : 0;
  if (dense > 0 || moe > 0) return Math.max(dense, moe);
  const embd = info.embedding_length;
  const layers = info.block_count;
  if (info.parameter_count && info.vocab_size && embd > 0 && layers > 0) {
    const kvWidth = info.head_count_kv * (info.key_length || (info.head_count ? embd / info.head_count : 0));
    const attention = 2 * embd * embd + 2 * embd * kvWidth;
    const perLayer = (info.parameter_count - 2 * info.vocab_size * embd) / layers - attention;
    if (perLayer > 0) return Math.round(perLayer / (3 * embd));
  }
  return 4 * embd;
}
