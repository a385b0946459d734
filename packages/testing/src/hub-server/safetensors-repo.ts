import type { HubFile } from "./hub-types.js";

/** The shape of a tiny llama-like transformer, as its config.json says it. */
export interface TinyTransformer {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  maxPositions: number;
}

export const TINY_TRANSFORMER: TinyTransformer = Object.freeze({
  hidden: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  intermediate: 128,
  vocab: 256,
  maxPositions: 2048,
});

/** The tensors of a llama-architecture checkpoint (names as transformers saves them) and their shapes. */
function llamaTensors(t: TinyTransformer): [string, number[]][] {
  const headDim = t.hidden / t.heads;
  const out: [string, number[]][] = [["model.embed_tokens.weight", [t.vocab, t.hidden]]];
  for (let i = 0; i < t.layers; i++) {
    const p = `model.layers.${i}`;
    out.push(
      [`${p}.self_attn.q_proj.weight`, [t.hidden, t.hidden]],
      [`${p}.self_attn.k_proj.weight`, [t.kvHeads * headDim, t.hidden]],
      [`${p}.self_attn.v_proj.weight`, [t.kvHeads * headDim, t.hidden]],
      [`${p}.self_attn.o_proj.weight`, [t.hidden, t.hidden]],
      [`${p}.mlp.gate_proj.weight`, [t.intermediate, t.hidden]],
      [`${p}.mlp.up_proj.weight`, [t.intermediate, t.hidden]],
      [`${p}.mlp.down_proj.weight`, [t.hidden, t.intermediate]],
      [`${p}.input_layernorm.weight`, [t.hidden]],
      [`${p}.post_attention_layernorm.weight`, [t.hidden]],
    );
  }
  out.push(["model.norm.weight", [t.hidden]], ["lm_head.weight", [t.vocab, t.hidden]]);
  return out;
}

/** Parameters of the tiny transformer: what its safetensors header adds up to. */
export function tinyTransformerParameters(t: TinyTransformer = TINY_TRANSFORMER): number {
  return llamaTensors(t).reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0);
}

/**
 * A valid `.safetensors` file (8-byte little-endian header length, the JSON header, then the data)
 * of a llama-like model with bf16 weights, its values a fixed pattern. Random-free and deterministic.
 */
export function tinySafetensors(t: TinyTransformer = TINY_TRANSFORMER): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, shape] of llamaTensors(t)) {
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: "BF16", shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // the header is padded with spaces to a multiple of 8 bytes, as safetensors writes it
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  const data = Buffer.alloc(offset);
  for (let i = 0; i < offset; i++) data[i] = (i * 7) % 251;
  return Buffer.concat([length, Buffer.from(json), data]);
}

/**
 * The files of a Hugging Face repo of a safetensors model, for the test hub: config.json (a llama
 * config), model.safetensors, the tokenizer and generation config, and files an engine does not
 * need (README.md, `original/consolidated.00.pth`), which a download leaves out.
 */
export function safetensorsRepoFiles(t: TinyTransformer = TINY_TRANSFORMER): Record<string, HubFile> {
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: t.hidden,
    intermediate_size: t.intermediate,
    num_hidden_layers: t.layers,
    num_attention_heads: t.heads,
    num_key_value_heads: t.kvHeads,
    vocab_size: t.vocab,
    max_position_embeddings: t.maxPositions,
    tie_word_embeddings: false,
    torch_dtype: "bfloat16",
    rms_norm_eps: 1e-5,
  };
  return {
    "config.json": { content: `${JSON.stringify(config, null, 2)}\n` },
    "model.safetensors": { content: tinySafetensors(t) },
    "tokenizer.json": { content: JSON.stringify({ version: "1.0", model: { type: "BPE", vocab: {}, merges: [] } }) },
    "tokenizer_config.json": { content: JSON.stringify({ model_max_length: t.maxPositions }) },
    "generation_config.json": { content: JSON.stringify({ bos_token_id: 1, eos_token_id: 2 }) },
    "README.md": { content: "# tiny-llama (safetensors)\nA test repo.\n" },
    "original/consolidated.00.pth": { content: Buffer.alloc(20_000, 1) },
  };
}
