import { cachedGeneratedModel, requireStoriesModel } from "@rbee/testing";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
import { describe, expect, it } from "vitest";
import { GGML_TYPES, GgmlTypeId, ggmlTensorBytes, llamaFileTypeName } from "../src/ggml-types.js";
import type { GgufTensorInfo, GgufValue } from "../src/gguf-format.js";
import type { GgufHeader } from "../src/header-parser.js";
import { inspectGguf } from "../src/inspect-gguf.js";
import { readGgufHeader } from "../src/read-gguf-header.js";

const MiB = 1024 * 1024;

/** A header as the parser would give it, from metadata and tensor shapes (offsets laid out in order). */
function header(metadata: Record<string, GgufValue>, tensors: Array<Omit<GgufTensorInfo, "offset">>): GgufHeader {
  let offset = 0;
  const laid = tensors.map((t) => {
    const info = { ...t, offset };
    offset += Math.ceil(ggmlTensorBytes(t.type, t.dims) / 32) * 32;
    return info;
  });
  return {
    version: 3,
    kv: [],
    metadata: new Map(Object.entries(metadata)),
    tensors: laid,
    alignment: 32,
    headerBytes: 4000,
    dataOffset: 4000 + 32 - (4000 % 32),
  };
}

/** The tensors of a small llama block stack, weight matrices in `type`. */
function llamaTensors(type: number, o: { embd: number; ff: number; vocab: number; layers: number; kv: number }) {
  const t: Array<Omit<GgufTensorInfo, "offset">> = [
    { name: "token_embd.weight", dims: [o.embd, o.vocab], type: GgmlTypeId.Q6_K as number },
    { name: "output_norm.weight", dims: [o.embd], type: 0 },
  ];
  for (let i = 0; i < o.layers; i++) {
    t.push(
      { name: `blk.${i}.attn_norm.weight`, dims: [o.embd], type: 0 },
      { name: `blk.${i}.attn_q.weight`, dims: [o.embd, o.embd], type },
      { name: `blk.${i}.attn_k.weight`, dims: [o.embd, o.kv], type },
      { name: `blk.${i}.attn_v.weight`, dims: [o.embd, o.kv], type: GgmlTypeId.Q6_K as number },
      { name: `blk.${i}.attn_output.weight`, dims: [o.embd, o.embd], type },
      { name: `blk.${i}.ffn_gate.weight`, dims: [o.embd, o.ff], type },
      { name: `blk.${i}.ffn_down.weight`, dims: [o.ff, o.embd], type: GgmlTypeId.Q6_K as number },
      { name: `blk.${i}.ffn_up.weight`, dims: [o.embd, o.ff], type },
    );
  }
  return t;
}

describe("ggml type sizes", () => {
  it("match what the llama.cpp library itself answers for every type id", async () => {
    const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
    try {
      // node-llama-cpp's internal bindings call ggml_type_size / ggml_blck_size
      const b = (llama as any)._bindings;
      for (const [id, t] of GGML_TYPES) {
        expect([id, b.getBlockSizeForGgmlType(id), b.getTypeSizeForGgmlType(id)]).toEqual([
          id,
          t.blockSize,
          t.typeSize,
        ]);
      }
    } finally {
      await llama.dispose();
    }
  });

  it("sizes tensors in whole blocks per row, and names file types", () => {
    expect(ggmlTensorBytes(GgmlTypeId.F16 as number, [4096, 4096])).toBe(4096 * 4096 * 2);
    expect(ggmlTensorBytes(GgmlTypeId.Q4_K as number, [4096, 11008])).toBe((4096 / 256) * 144 * 11008);
    expect(ggmlTensorBytes(GgmlTypeId.Q8_0 as number, [896, 151936])).toBe((896 / 32) * 34 * 151936);
    expect(() => ggmlTensorBytes(4, [32])).toThrow(/unknown ggml tensor type 4/);
    expect(llamaFileTypeName(15)).toBe("Q4_K_M");
    expect(llamaFileTypeName(7)).toBe("Q8_0");
    expect(llamaFileTypeName(1024 + 15)).toBe("Q4_K_M");
    expect(llamaFileTypeName(999)).toBeUndefined();
  });
});

describe("inspectGguf", () => {
  it("describes stories260K as llama.cpp does (292.80 K params, all F32, GQA 8/4)", async () => {
    const { header } = await readGgufHeader(requireStoriesModel());
    const info = inspectGguf(header, 1_185_376);
    expect(info).toMatchObject({
      architecture: "llama",
      name: "llama",
      parameter_count: 292_800,
      quantization: "F32",
      dominant_tensor_type: "F32",
      context_length: 2048,
      block_count: 5,
      embedding_length: 64,
      feed_forward_length: 172,
      head_count: 8,
      head_count_kv: 4,
      key_length: 8,
      value_length: 8,
      vocab_size: 512,
      has_chat_template: false,
      tensor_bytes: 292_800 * 4,
      file_bytes: 1_185_376,
      token_embd_bytes: 64 * 512 * 4,
      output_tied: false,
      split_count: 1,
    });
    expect(info.file_type).toBeUndefined();
    expect(info.sliding_window).toBeUndefined();
    // without a size given, the header implies it
    expect(inspectGguf(header).file_bytes).toBe(1_185_376);
  });

  it("describes a generated F16 model exactly as it was planned", async () => {
    const m = await cachedGeneratedModel(60 * MiB, { gqa: 4 });
    const info = inspectGguf((await readGgufHeader(m.path)).header);
    expect(info).toMatchObject({
      quantization: "F16",
      file_type: "F16",
      dominant_tensor_type: "F16",
      parameter_count: m.layout.params,
      tensor_bytes: m.layout.tensorBytes,
      file_bytes: m.layout.fileBytes,
      block_count: m.config.nLayers,
      embedding_length: m.config.nEmbd,
      head_count: m.config.nHead,
      head_count_kv: m.config.nHeadKv,
      feed_forward_length: m.config.nFf,
      key_length: 64,
      vocab_size: 512,
    });
  });

  it("names the file type and the dominant tensor type of a quantized model", () => {
    const o = { embd: 896, ff: 4864, vocab: 151_936, layers: 4, kv: 128 };
    const h = header(
      {
        "general.architecture": "qwen2",
        "general.name": "Qwen2.5 0.5B Instruct",
        "general.file_type": 15,
        "qwen2.block_count": 4,
        "qwen2.context_length": 32768,
        "qwen2.embedding_length": 896,
        "qwen2.feed_forward_length": 4864,
        "qwen2.attention.head_count": 14,
        "qwen2.attention.head_count_kv": 2,
        "tokenizer.chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}",
      },
      llamaTensors(GgmlTypeId.Q4_K as number, o),
    );
    const info = inspectGguf(h);
    expect(info.quantization).toBe("Q4_K_M");
    expect(info.dominant_tensor_type).toBe("Q6_K"); // the tied embedding is Q6_K here and outweighs the Q4_K blocks
    expect(info.tensor_types.Q4_K).toBeGreaterThan(0);
    expect(info.output_tied).toBe(true);
    expect(info.has_chat_template).toBe(true);
    expect(info.vocab_size).toBe(151_936); // from token_embd: no vocab_size key, no tokenizer tokens
    expect(info.key_length).toBe(64);
    expect(
      inspectGguf(header({ "general.architecture": "llama" }, llamaTensors(8, { ...o, vocab: 32 }))).quantization,
    ).toBe("Q8_0");
  });

  it("extrapolates a split model from its first part and the total size", () => {
    const o = { embd: 256, ff: 1024, vocab: 1000, layers: 2, kv: 256 };
    const first = header(
      { "general.architecture": "llama", "split.count": 3, "split.no": 0, "split.tensors.count": 50 },
      llamaTensors(GgmlTypeId.F16 as number, o),
    );
    const own = inspectGguf(header({ "general.architecture": "llama" }, llamaTensors(GgmlTypeId.F16 as number, o)));
    const whole = inspectGguf(first, 3 * own.file_bytes);
    // without the total size: scaled by split.tensors.count
    expect(inspectGguf(first).tensor_bytes).toBe(Math.round((own.tensor_bytes * 50) / 18));
    expect(whole.split_count).toBe(3);
    expect(whole.tensor_bytes).toBeGreaterThan(2.9 * own.tensor_bytes);
    expect(whole.tensor_bytes).toBeLessThan(3.01 * own.tensor_bytes);
    expect(whole.parameter_count / own.parameter_count).toBeCloseTo(whole.tensor_bytes / own.tensor_bytes, 5);
    expect(whole.output_tied).toBe(false); // output.weight may be in another part
  });

  it("knows llama.cpp's sliding-window layer patterns, experts and per-layer head counts", () => {
    const gemma3 = inspectGguf(
      header(
        {
          "general.architecture": "gemma3",
          "gemma3.block_count": 12,
          "gemma3.attention.sliding_window": 512,
          "gemma3.expert_count": 0,
        },
        [],
      ),
    );
    expect(gemma3.sliding_window).toBe(512);
    // period 6: five sliding-window layers, then a global one
    expect(gemma3.sliding_window_layers?.map(Number).join("")).toBe("111110111110");
    expect(gemma3.expert_count).toBeUndefined();

    const gemma2 = inspectGguf(header({ "general.architecture": "gemma2", "gemma2.block_count": 4 }, []));
    expect(gemma2.sliding_window).toBe(4096); // llama.cpp's default for gemma2
    expect(gemma2.sliding_window_layers).toEqual([true, false, true, false]);

    const byFile = inspectGguf(
      header(
        {
          "general.architecture": "newarch",
          "newarch.block_count": 3,
          "newarch.attention.sliding_window": 128,
          "newarch.attention.sliding_window_pattern": [true, false, true],
        },
        [],
      ),
    );
    expect(byFile.sliding_window_layers).toEqual([true, false, true]);
    // an unknown pattern: every layer counted at full context
    const unknown = inspectGguf(
      header({ "general.architecture": "other", "other.block_count": 3, "other.attention.sliding_window": 128 }, []),
    );
    expect(unknown.sliding_window).toBe(128);
    expect(unknown.sliding_window_layers).toBeUndefined();

    const moe = inspectGguf(
      header(
        {
          "general.architecture": "qwen3moe",
          "qwen3moe.block_count": 2,
          "qwen3moe.expert_count": 128,
          "qwen3moe.expert_used_count": 8,
          "qwen3moe.expert_feed_forward_length": 768,
          "qwen3moe.attention.head_count": [16, 16],
          "qwen3moe.attention.head_count_kv": [4, 0],
          "qwen3moe.attention.key_length": 128,
          "qwen3moe.embedding_length": 2048,
        },
        [],
      ),
    );
    expect(moe).toMatchObject({
      expert_count: 128,
      expert_used_count: 8,
      expert_feed_forward_length: 768,
      head_count: 16,
      head_count_kv: 4,
      head_count_kv_per_layer: [4, 0],
      key_length: 128,
      value_length: 128,
    });
  });
});
