import { readGgufHeaderSync } from "@rbee/gguf";
import { STORIES_MODEL } from "../paths.js";
import { GgmlType, type GgufKv, GgufType } from "./gguf-format.js";
import { mixSeed, UniformStream } from "./random-fill.js";
import { encodeGgufHeader, type GgufLayout, type GgufTensorSource, writeGguf } from "./write-gguf.js";

/** The element type of the weight matrices (norm vectors are always F32, as llama.cpp's converter writes them). */
export type LlamaTensorType = "f32" | "f16";

/** The shape of a random-weight llama model. */
export interface LlamaGgufConfig {
  /** Embedding width (llama.embedding_length); a multiple of nHead. */
  nEmbd: number;
  /** Number of transformer blocks (llama.block_count). */
  nLayers: number;
  /** Attention heads; the head size nEmbd / nHead must be even (RoPE). */
  nHead: number;
  /** Key/value heads (grouped-query attention); divides nHead. Default nHead. */
  nHeadKv?: number;
  /** Feed-forward width (llama.feed_forward_length). */
  nFf: number;
  /** llama.context_length. Default 2048. */
  contextLength?: number;
  /** Default "f16". */
  tensorType?: LlamaTensorType;
  /** general.name. Default "rbee-random-llama". */
  name?: string;
  /** The GGUF whose `tokenizer.*` keys are copied (it fixes the vocabulary). Default stories260K. */
  vocabFrom?: string;
  /** Seed of the weights; the same config and seed give the same bytes. Default 1. */
  seed?: number;
}

/** A config with every default filled in. */
export type ResolvedLlamaGgufConfig = Required<LlamaGgufConfig>;

/** The exact byte layout of a generated model, and its parameter count. */
export interface LlamaGgufLayout extends GgufLayout {
  /** Parameters (weights) in all tensors, norms included. */
  params: number;
  /** The vocabulary size (from the copied tokenizer). */
  nVocab: number;
}

/** Options of writeLlamaGguf: the model's shape and where to write it. */
export interface WriteLlamaGgufOptions extends LlamaGgufConfig {
  path: string;
  /** Bytes per write; the output does not depend on it. Default 4 MiB. */
  chunkBytes?: number;
}

/** What writeLlamaGguf wrote. */
export interface WrittenLlamaGguf {
  path: string;
  config: ResolvedLlamaGgufConfig;
  layout: LlamaGgufLayout;
  /** Wall time of the write, in milliseconds. */
  ms: number;
}

/** Fills in the defaults and checks that llama.cpp will accept the shape. */
export function resolveLlamaGgufConfig(config: LlamaGgufConfig): ResolvedLlamaGgufConfig {
  const resolved: ResolvedLlamaGgufConfig = {
    nEmbd: config.nEmbd,
    nLayers: config.nLayers,
    nHead: config.nHead,
    nHeadKv: config.nHeadKv ?? config.nHead,
    nFf: config.nFf,
    contextLength: config.contextLength ?? 2048,
    tensorType: config.tensorType ?? "f16",
    name: config.name ?? "rbee-random-llama",
    vocabFrom: config.vocabFrom ?? STORIES_MODEL,
    seed: config.seed ?? 1,
  };
  for (const key of ["nEmbd", "nLayers", "nHead", "nHeadKv", "nFf", "contextLength"] as const) {
    const v = resolved[key];
    if (!Number.isInteger(v) || v < 1) throw new Error(`${key} must be a positive integer, got ${v}`);
  }
  if (resolved.nEmbd % resolved.nHead !== 0) throw new Error("nEmbd must be a multiple of nHead");
  if ((resolved.nEmbd / resolved.nHead) % 2 !== 0) throw new Error("the head size nEmbd / nHead must be even");
  if (resolved.nHead % resolved.nHeadKv !== 0) throw new Error("nHeadKv must divide nHead");
  if (resolved.tensorType !== "f16" && resolved.tensorType !== "f32") throw new Error("tensorType must be f16 or f32");
  return resolved;
}

/** The exact layout (file size, tensor offsets, parameter count) writeLlamaGguf will produce for `config`. */
export function llamaGgufLayout(config: LlamaGgufConfig): LlamaGgufLayout {
  const c = resolveLlamaGgufConfig(config);
  const { kv, nVocab } = llamaKv(c);
  const tensors = llamaTensorShapes(c, nVocab);
  const { layout } = encodeGgufHeader(kv, tensors);
  return { ...layout, params: countParams(tensors), nVocab };
}

/**
 * Writes a llama-architecture GGUF with deterministic pseudo-random weights that llama.cpp loads
 * and runs like any model: the tokenizer is copied from `vocabFrom` (stories260K by default, so
 * the model tokenizes text the same way), matrices are uniform in ±sqrt(3 / fan-in) (unit
 * variance out for unit variance in, so activations and logits stay finite), the token
 * embedding uniform in ±1, norm weights 1. The file is streamed, so its size is not bound by memory.
 */
export async function writeLlamaGguf(options: WriteLlamaGgufOptions): Promise<WrittenLlamaGguf> {
  const started = performance.now();
  const c = resolveLlamaGgufConfig(options);
  const { kv, nVocab } = llamaKv(c);
  const shapes = llamaTensorShapes(c, nVocab);
  const elementType = c.tensorType;
  const tensors: GgufTensorSource[] = shapes.map((shape, index) => {
    if (shape.type === GgmlType.F32 && shape.dims.length === 1) {
      return { ...shape, fill: (out) => new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4).fill(1) };
    }
    const fanIn = shape.dims[0]!;
    const amplitude = shape.name === "token_embd.weight" ? 1 : Math.sqrt(3 / fanIn);
    const stream = new UniformStream(mixSeed(c.seed, index), amplitude, elementType);
    const fill =
      elementType === "f16"
        ? (out: Uint8Array) => stream.fill16(new Uint16Array(out.buffer, out.byteOffset, out.byteLength / 2))
        : (out: Uint8Array) => stream.fill32(new Float32Array(out.buffer, out.byteOffset, out.byteLength / 4));
    return { ...shape, fill };
  });
  const writeOptions = options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes };
  const layout = await writeGguf(options.path, kv, tensors, writeOptions);
  return {
    path: options.path,
    config: c,
    layout: { ...layout, params: countParams(shapes), nVocab },
    ms: performance.now() - started,
  };
}

/**
 * The `tokenizer.*` pairs of a GGUF file, read once per path. Special-token ids set to
 * 0xFFFFFFFF ("none", as stories260K has for the separator and padding tokens) are left out:
 * llama.cpp treats them as absent anyway, but warns about each one on every load.
 */
export function tokenizerKv(path: string): GgufKv[] {
  let kv = tokenizerCache.get(path);
  if (!kv) {
    kv = readGgufHeaderSync(path).header.kv.filter(
      (e) => e.key.startsWith("tokenizer.") && !(e.key.endsWith("_token_id") && e.value === 0xffffffff),
    );
    if (!kv.some((e) => e.key === "tokenizer.ggml.tokens")) throw new Error(`${path} has no tokenizer.ggml.tokens`);
    tokenizerCache.set(path, kv);
  }
  return kv;
}

const tokenizerCache = new Map<string, GgufKv[]>();

function llamaKv(c: ResolvedLlamaGgufConfig): { kv: GgufKv[]; nVocab: number } {
  const tokenizer = tokenizerKv(c.vocabFrom);
  const tokens = tokenizer.find((e) => e.key === "tokenizer.ggml.tokens");
  const nVocab = Array.isArray(tokens?.value) ? tokens.value.length : 0;
  const u32 = (key: string, value: number): GgufKv => ({ key, type: GgufType.UINT32, value });
  const f32 = (key: string, value: number): GgufKv => ({ key, type: GgufType.FLOAT32, value });
  const str = (key: string, value: string): GgufKv => ({ key, type: GgufType.STRING, value });
  const kv: GgufKv[] = [
    str("general.architecture", "llama"),
    str("general.name", c.name),
    str("general.description", `random weights (seed ${c.seed}), written by @rbee/testing for tests and benchmarks`),
    // llama_ftype: 0 = ALL_F32, 1 = MOSTLY_F16
    u32("general.file_type", c.tensorType === "f16" ? 1 : 0),
    u32("llama.vocab_size", nVocab),
    u32("llama.context_length", c.contextLength),
    u32("llama.embedding_length", c.nEmbd),
    u32("llama.block_count", c.nLayers),
    u32("llama.feed_forward_length", c.nFf),
    u32("llama.attention.head_count", c.nHead),
    u32("llama.attention.head_count_kv", c.nHeadKv),
    u32("llama.rope.dimension_count", c.nEmbd / c.nHead),
    f32("llama.rope.freq_base", 10000),
    f32("llama.attention.layer_norm_rms_epsilon", 1e-5),
    ...tokenizer,
  ];
  return { kv, nVocab };
}

function countParams(shapes: readonly TensorShape[]): number {
  return shapes.reduce((sum, t) => sum + t.dims.reduce((a, b) => a * b, 1), 0);
}

type TensorShape = Pick<GgufTensorSource, "name" | "dims" | "type">;

/** llama.cpp's tensors for LLM_ARCH_LLAMA; dims fastest-varying first ([in, out] for matrices). */
function llamaTensorShapes(c: ResolvedLlamaGgufConfig, nVocab: number): TensorShape[] {
  const w = c.tensorType === "f16" ? GgmlType.F16 : GgmlType.F32;
  const norm = (name: string): TensorShape => ({ name, dims: [c.nEmbd], type: GgmlType.F32 });
  const kvWidth = (c.nEmbd / c.nHead) * c.nHeadKv;
  const shapes: TensorShape[] = [
    { name: "token_embd.weight", dims: [c.nEmbd, nVocab], type: w },
    norm("output_norm.weight"),
    { name: "output.weight", dims: [c.nEmbd, nVocab], type: w },
  ];
  for (let i = 0; i < c.nLayers; i++) {
    const b = `blk.${i}`;
    shapes.push(
      norm(`${b}.attn_norm.weight`),
      { name: `${b}.attn_q.weight`, dims: [c.nEmbd, c.nEmbd], type: w },
      { name: `${b}.attn_k.weight`, dims: [c.nEmbd, kvWidth], type: w },
      { name: `${b}.attn_v.weight`, dims: [c.nEmbd, kvWidth], type: w },
      { name: `${b}.attn_output.weight`, dims: [c.nEmbd, c.nEmbd], type: w },
      norm(`${b}.ffn_norm.weight`),
      { name: `${b}.ffn_gate.weight`, dims: [c.nEmbd, c.nFf], type: w },
      { name: `${b}.ffn_down.weight`, dims: [c.nFf, c.nEmbd], type: w },
      { name: `${b}.ffn_up.weight`, dims: [c.nEmbd, c.nFf], type: w },
    );
  }
  return shapes;
}
