import { estimateHfRepoWorker, summarizeHfConfig } from "@rbee/contract";
import { compareVersions } from "@rbee/worker-kit";
import { describe, expect, it } from "vitest";
import { vllmWorkerType } from "../src/worker-type.js";

// Llama 3.1 8B's config.json (the fields rbee reads, as meta-llama/Llama-3.1-8B-Instruct has them)
const LLAMA_31_8B = {
  architectures: ["LlamaForCausalLM"],
  hidden_size: 4096,
  intermediate_size: 14336,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  vocab_size: 128256,
  max_position_embeddings: 131072,
  tie_word_embeddings: false,
  torch_dtype: "bfloat16",
};
const GiB = 2 ** 30;

describe("the hf-repo memory estimate, from config.json", () => {
  it("counts Llama 3.1 8B's parameters from its shapes (8.03 B) and their bf16 bytes", () => {
    const s = summarizeHfConfig(LLAMA_31_8B);
    expect(s).toMatchObject({ dtype: "bfloat16", dtype_bytes: 2, layers: 32, kv_heads: 8, head_dim: 128 });
    expect(s.parameters).toBeGreaterThan(8.0e9);
    expect(s.parameters).toBeLessThan(8.1e9);
  });

  it("adds the KV cache: 2 × layers × kv_heads × head_dim × context × bytes, per sequence", () => {
    const s = summarizeHfConfig(LLAMA_31_8B, 8_030_261_248);
    const e = vllmWorkerType.estimateMemory(
      { size_bytes: 16 * GiB, hf_config: s },
      { deviceKind: "cuda", contextSize: 8192, parallel: 4 },
    );
    expect(e.weights).toBe(8_030_261_248 * 2);
    // 2 × 32 × 8 × 128 × 8192 × 2 bytes = 1 GiB per sequence
    expect(e.kv_cache).toBe(4 * GiB);
    expect(e.total).toBe(e.weights + e.kv_cache + e.compute + e.overhead);
    expect(e).toMatchObject({ context_size: 8192, parallel: 4 });
  });

  it("without a config.json the repo's size stands for the weights; a config missing a field is refused naming it", () => {
    expect(estimateHfRepoWorker({ size_bytes: 3 * GiB }, {}).weights).toBe(3 * GiB);
    expect(() => summarizeHfConfig({ hidden_size: 64 })).toThrow(/num_hidden_layers/);
  });

  it("fp32 weights count 4 bytes each; the context defaults to the model's, at most 4096", () => {
    const s = summarizeHfConfig({ ...LLAMA_31_8B, torch_dtype: "float32", max_position_embeddings: 2048 }, 1000);
    const e = estimateHfRepoWorker({ size_bytes: 0, hf_config: s }, { parallel: 1 });
    expect(e.weights).toBe(4000);
    expect(e.context_size).toBe(2048);
  });
});

describe("engine versions", () => {
  it("compares dotted versions by their numbers, and says when one is unreadable", () => {
    expect(compareVersions("0.10.1", "0.6.0")).toBeGreaterThan(0);
    expect(compareVersions("0.5.4", "0.6.0")).toBeLessThan(0);
    expect(compareVersions("0.6.0rc1.dev5+gabc", "0.6.0")).toBe(0);
    expect(compareVersions("v1.0.0", "0.17.0")).toBeGreaterThan(0);
    expect(compareVersions("dev", "0.6.0")).toBeUndefined();
  });
});
