import { z } from "zod";
import type { MemoryEstimate } from "./hive-api.js";

/**
 * What rbee reads of a Hugging Face model's `config.json` (transformers' PretrainedConfig), leniently:
 * enough to estimate the memory an engine such as vLLM needs for it. Names as transformers writes them.
 */
export const HfModelConfig = z.looseObject({
  architectures: z.array(z.string()).optional(),
  model_type: z.string().optional(),
  hidden_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_key_value_heads: z.number().int().positive().optional(),
  head_dim: z.number().int().positive().nullish(),
  intermediate_size: z.number().int().positive().optional(),
  vocab_size: z.number().int().positive().optional(),
  max_position_embeddings: z.number().int().positive().optional(),
  tie_word_embeddings: z.boolean().optional(),
  torch_dtype: z.string().nullish(),
  /** transformers ≥ 4.56 writes `dtype` instead of `torch_dtype`. */
  dtype: z.string().nullish(),
});
export type HfModelConfig = z.infer<typeof HfModelConfig>;

/** What the catalog keeps of a config.json, and the memory estimate reads. */
export const HfConfigSummary = z.looseObject({
  architecture: z.string().optional(),
  /** Weights, counted from the safetensors headers when known, else from the config's shapes. */
  parameters: z.number().int().nonnegative(),
  /** The dtype the weights are served in ("bfloat16") and its bytes per value. */
  dtype: z.string(),
  dtype_bytes: z.number().positive(),
  layers: z.number().int().positive(),
  kv_heads: z.number().int().positive(),
  head_dim: z.number().int().positive(),
  context_length: z.number().int().positive().optional(),
});
export type HfConfigSummary = z.infer<typeof HfConfigSummary>;

const DTYPE_BYTES: Record<string, number> = {
  float32: 4,
  float: 4,
  float16: 2,
  half: 2,
  bfloat16: 2,
  float8_e4m3fn: 1,
  int8: 1,
};

/**
 * A config.json as a summary. `parameters`, when not given (from the safetensors headers), is counted
 * from the shapes of a decoder-only transformer: embeddings (twice unless tied), per layer the
 * attention projections (q, o: hidden²; k, v: hidden × kv_heads × head_dim) and a gated MLP
 * (3 × hidden × intermediate). Throws a zod error naming the missing field.
 */
export function summarizeHfConfig(raw: unknown, parameters?: number): HfConfigSummary {
  const c = HfModelConfig.parse(raw);
  const dtype = c.dtype ?? c.torch_dtype ?? "bfloat16";
  const kvHeads = c.num_key_value_heads ?? c.num_attention_heads;
  const headDim = c.head_dim ?? Math.floor(c.hidden_size / c.num_attention_heads);
  const h = c.hidden_size;
  const counted =
    (c.vocab_size ?? 32000) * h * (c.tie_word_embeddings === true ? 1 : 2) +
    c.num_hidden_layers * (2 * h * h + 2 * h * kvHeads * headDim + 3 * h * (c.intermediate_size ?? 4 * h) + 2 * h);
  return {
    architecture: c.architectures?.[0] ?? c.model_type,
    parameters: parameters ?? counted,
    dtype,
    dtype_bytes: DTYPE_BYTES[dtype] ?? 2,
    layers: c.num_hidden_layers,
    kv_heads: kvHeads,
    head_dim: headDim,
    context_length: c.max_position_embeddings,
  };
}

/**
 * The memory a model of a Hugging Face repo needs in an engine that loads safetensors (vLLM,
 * TensorRT-LLM): weights (parameters × dtype bytes) plus the KV cache for the context
 * (2 × layers × kv_heads × head_dim × context × dtype bytes, for each parallel sequence).
 */
export function hfRepoMemory(
  s: HfConfigSummary,
  contextSize: number,
  parallel: number,
): { weights: number; kv_cache: number } {
  return {
    weights: Math.ceil(s.parameters * s.dtype_bytes),
    kv_cache: 2 * s.layers * s.kv_heads * s.head_dim * contextSize * parallel * s.dtype_bytes,
  };
}

const MiB = 1024 * 1024;

/**
 * A worker type's memory estimate for a Hugging Face repo model (vLLM, TensorRT-LLM): weights and KV
 * cache from its config.json ({@link hfRepoMemory}); without one, the repo's size stands for the
 * weights. Compute buffers are taken as 10 % of the weights (at least 256 MiB); the adapter's node
 * process is 96 MiB of host memory, counted as overhead.
 */
export function estimateHfRepoWorker(
  model: { size_bytes: number; hf_config?: HfConfigSummary | undefined },
  o: { contextSize?: number; parallel?: number },
): MemoryEstimate {
  const s = model.hf_config;
  const contextSize = o.contextSize ?? Math.min(s?.context_length ?? 4096, 4096);
  const parallel = o.parallel ?? 4;
  const { weights, kv_cache } = s ? hfRepoMemory(s, contextSize, parallel) : { weights: model.size_bytes, kv_cache: 0 };
  const compute = Math.max(256 * MiB, Math.ceil(weights / 10));
  const overhead = 96 * MiB;
  return {
    weights,
    kv_cache,
    compute,
    overhead,
    total: weights + kv_cache + compute + overhead,
    context_size: contextSize,
    parallel,
  };
}
