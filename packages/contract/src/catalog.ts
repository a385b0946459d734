import { z } from "zod";
import { Bytes, Timestamp } from "./common.js";
import { HfConfigSummary } from "./hf-config.js";

export const ArtifactStatus = z.enum(["Available", "Downloading", "Failed"]);
export type ArtifactStatus = z.infer<typeof ArtifactStatus>;

/** One file of an artifact (a model can be several split GGUF files). */
export const ArtifactFile = z.looseObject({
  /**
   * Relative to the artifact's directory (never with `..`), or absolute for a file used in place:
   * a local GGUF the user pointed at, or a file in the Hugging Face cache.
   */
  path: z.string().min(1),
  size_bytes: Bytes,
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});
export type ArtifactFile = z.infer<typeof ArtifactFile>;

/**
 * What a model's GGUF header says, as far as placement needs it: enough to estimate the memory a
 * worker needs for a context size and a number of parallel sequences, without the file.
 */
export const GgufSummary = z.looseObject({
  architecture: z.string(),
  name: z.string().optional(),
  parameter_count: z.number().nonnegative(),
  /** The file type, e.g. "Q4_K_M", "Q8_0", "F16". */
  quantization: z.string(),
  context_length: z.number().int().nonnegative(),
  block_count: z.number().int().nonnegative(),
  embedding_length: z.number().int().nonnegative(),
  head_count: z.number().int().nonnegative(),
  head_count_kv: z.number().int().nonnegative(),
  key_length: z.number().int().nonnegative().optional(),
  value_length: z.number().int().nonnegative().optional(),
  vocab_size: z.number().int().nonnegative().optional(),
  feed_forward_length: z.number().int().nonnegative().optional(),
  /** Grouped-query attention that differs by layer. */
  head_count_kv_per_layer: z.array(z.number().int().nonnegative()).optional(),
  expert_count: z.number().int().nonnegative().optional(),
  expert_used_count: z.number().int().nonnegative().optional(),
  expert_feed_forward_length: z.number().int().nonnegative().optional(),
  /** Sliding-window attention: the window, and which layers use it. */
  sliding_window: z.number().int().nonnegative().optional(),
  sliding_window_layers: z.array(z.boolean()).optional(),
  /** The token embedding (kept in host memory when layers go to a GPU), and whether the output shares it. */
  token_embd_bytes: Bytes.optional(),
  output_tied: z.boolean().optional(),
  tensor_bytes: Bytes,
  file_bytes: Bytes,
});
export type GgufSummary = z.infer<typeof GgufSummary>;

/** The `artifact` of a metadata.json: a model or a worker package in a hive's catalog. */
/**
 * The format of a model's files: `gguf` (one GGUF file, or its split parts) or `hf-repo` (a Hugging
 * Face repo directory: config.json, safetensors, tokenizer). The worker types' `artifact` says which
 * one each loads.
 */
export const ModelFormat = z.enum(["gguf", "hf-repo"]);
export type ModelFormat = z.infer<typeof ModelFormat>;

export const Artifact = z.looseObject({
  id: z.string().min(1),
  name: z.string(),
  version: z.string(),
  size_bytes: Bytes,
  source_url: z.string(),
  status: ArtifactStatus,
  kind: z.enum(["model", "worker"]).optional(),
  files: z.array(ArtifactFile).optional(),
  /** Set when `status` is Failed: what went wrong, in words. */
  error: z.string().optional(),
  /** For GGUF models: what the header says (placement reads it). */
  gguf: GgufSummary.optional(),
  /** What the model is: one GGUF file (the default), or a Hugging Face repo directory (safetensors + config.json). */
  format: ModelFormat.optional(),
  /** For a Hugging Face repo: what its config.json says (placement reads it). */
  hf_config: HfConfigSummary.optional(),
  /** For downloads: bytes on disk so far. */
  downloaded_bytes: Bytes.optional(),
});
export type Artifact = z.infer<typeof Artifact>;

/** `<cache>/models/<id>/metadata.json` and `<cache>/workers/<id>/metadata.json`. */
export const ArtifactMetadata = z.looseObject({
  artifact: Artifact,
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type ArtifactMetadata = z.infer<typeof ArtifactMetadata>;
