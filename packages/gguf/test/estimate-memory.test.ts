import { cachedGeneratedModel, requireStoriesModel } from "@rbee/testing";
import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { estimateMemory, GPU_RUNTIME_OVERHEAD, type MemoryEstimateInput } from "../src/estimate-memory.js";
import { formatBytes } from "../src/format-bytes.js";
import { type GgufInfo, inspectGguf } from "../src/inspect-gguf.js";
import { readGgufHeader } from "../src/read-gguf-header.js";
import { bigVocabModel } from "./models.js";

const MiB = 1024 * 1024;

/** The buffers llama.cpp logs when it loads a model and creates a context, in bytes. */
interface Logged {
  weights: number;
  kv: number;
  compute: number;
  output: number;
  total: number;
}

/** A context to create: tokens per sequence, sequences, and what else differs from the defaults. */
interface Setting {
  contextSize: number;
  sequences: number;
  batchSize?: number;
  flashAttention?: boolean;
}

describe("estimateMemory against what llama.cpp allocates (node-llama-cpp, CPU)", () => {
  let llama: Llama;
  const lines: string[] = [];

  beforeAll(async () => {
    llama = await getLlama({
      gpu: false,
      build: "never",
      logLevel: LlamaLogLevel.info,
      logger: (_level, message) => lines.push(message),
    });
  });
  afterAll(async () => {
    await llama?.dispose();
  });

  /** `<what> buffer size = 12.34 MiB` from the lines logged since `from`; 0 when absent. */
  function mib(from: number, what: RegExp): number {
    const line = lines.slice(from).find((l) => what.test(l));
    const m = line && / = +([\d.]+) MiB/.exec(line);
    return m ? Number(m[1]) * MiB : 0;
  }

  /** Loads the model, creates a context per setting, and reads llama.cpp's log of each. */
  async function measure(path: string, settings: Setting[]): Promise<Logged[]> {
    const start = lines.length;
    const model = await llama.loadModel({ modelPath: path });
    try {
      await expect.poll(() => mib(start, /CPU_Mapped model buffer size/)).toBeGreaterThan(0);
      const weights = mib(start, /CPU_Mapped model buffer size/);
      const out: Logged[] = [];
      for (const s of settings) {
        const from = lines.length;
        const context = await model.createContext({ ...s, threads: 1 });
        try {
          // the log lines can arrive a moment after the context
          await expect.poll(() => mib(from, /CPU compute buffer size/)).toBeGreaterThan(0);
          const kv = mib(from, /CPU KV buffer size/);
          const compute = mib(from, /CPU compute buffer size/);
          const output = mib(from, /CPU +output buffer size/);
          out.push({ weights, kv, compute, output, total: weights + kv + compute + output });
        } finally {
          await context.dispose();
        }
      }
      return out;
    } finally {
      await model.dispose();
    }
  }

  async function info(path: string): Promise<GgufInfo> {
    return inspectGguf((await readGgufHeader(path)).header);
  }

  /** Checks each estimate against the logged buffers: the total within 15 %, and each part on its own. */
  function check(name: string, gguf: GgufInfo, settings: Setting[], logged: Logged[]): void {
    settings.forEach((s, i) => {
      const l = logged[i] as Logged;
      const e = estimateMemory(gguf, {
        contextSize: s.contextSize,
        parallel: s.sequences,
        device: "cpu",
        ...(s.batchSize === undefined ? {} : { batchSize: s.batchSize }),
        ...(s.flashAttention === undefined ? {} : { flashAttention: s.flashAttention }),
      });
      const label = `${name} ctx=${s.contextSize}×${s.sequences}: estimated ${formatBytes(e.total)} (${formatBytes(e.weights)} + ${formatBytes(e.kvCache)} + ${formatBytes(e.compute)} + ${formatBytes(e.overhead)}), llama.cpp logged ${formatBytes(l.total)} (${formatBytes(l.weights)} + ${formatBytes(l.kv)} + ${formatBytes(l.compute)} + ${formatBytes(l.output)})`;
      expect(Math.abs(e.total - l.total) / l.total, label).toBeLessThan(0.15);
      // the parts: weights and KV cache to the logged precision (0.01 MiB), compute within 10 %
      expect(Math.abs(e.weights - l.weights), label).toBeLessThan(Math.max(0.01 * l.weights, 0.006 * MiB));
      expect(Math.abs(e.kvCache - l.kv), label).toBeLessThan(Math.max(0.005 * l.kv, 0.006 * MiB));
      expect(Math.abs(e.compute - l.compute) / l.compute, label).toBeLessThan(0.1);
    });
  }

  it("stories260K at two context sizes, and four sequences", async () => {
    const path = requireStoriesModel();
    const settings: Setting[] = [
      { contextSize: 512, sequences: 1 },
      { contextSize: 2048, sequences: 1 },
      { contextSize: 1024, sequences: 4 },
    ];
    check("stories260K", await info(path), settings, await measure(path, settings));
  });

  it("a generated ~60 MB F16 model (full attention, and 4:1 grouped-query attention)", async () => {
    const settings: Setting[] = [
      { contextSize: 2048, sequences: 1 },
      { contextSize: 1024, sequences: 4 },
      { contextSize: 300, sequences: 3 }, // padded to 256-cell multiples
      { contextSize: 2048, sequences: 1, batchSize: 128 },
      { contextSize: 2048, sequences: 1, flashAttention: false },
    ];
    const full = (await cachedGeneratedModel(60 * MiB)).path;
    check("60 MB", await info(full), settings, await measure(full, settings));
    const gqa = (await cachedGeneratedModel(60 * MiB, { gqa: 4 })).path;
    check("60 MB GQA", await info(gqa), settings.slice(0, 2), await measure(gqa, settings.slice(0, 2)));
  });

  it("a generated ~250 MB F16 model", async () => {
    const path = (await cachedGeneratedModel(250 * MiB)).path;
    const settings: Setting[] = [
      { contextSize: 512, sequences: 1 },
      { contextSize: 4096, sequences: 2 },
    ];
    check("250 MB", await info(path), settings, await measure(path, settings));
  });

  it("a model with a 32,000-token vocabulary, whose logits dominate the compute buffer", async () => {
    const path = await bigVocabModel();
    const settings: Setting[] = [
      { contextSize: 512, sequences: 1 },
      { contextSize: 2048, sequences: 2 },
    ];
    const logged = await measure(path, settings);
    expect(logged[0]?.compute).toBeGreaterThan(60 * MiB);
    check("32k vocab", await info(path), settings, logged);
  });
});

describe("estimateMemory", () => {
  /** A Llama-3.2-1B-like model at Q4_K_M: 16 layers, 2048 wide, 8 KV heads of 64, 128,256 tokens. */
  const llama1b: MemoryEstimateInput = {
    tensor_bytes: 770 * MiB,
    block_count: 16,
    embedding_length: 2048,
    head_count: 32,
    head_count_kv: 8,
    key_length: 64,
    value_length: 64,
    vocab_size: 128_256,
    feed_forward_length: 8192,
    token_embd_bytes: 200 * MiB,
    output_tied: true,
  };

  it("sizes the KV cache as 2 × layers × cells × kv heads × head size × bytes, cells padded to 256", () => {
    const e = estimateMemory(llama1b, { contextSize: 4096, parallel: 4, device: "cpu" });
    expect(e.kvCache).toBe(2 * 16 * 4096 * 4 * 8 * 64 * 2);
    expect(e.weights).toBe(770 * MiB);
    expect(e.overhead).toBe(4 * 128_256 * 4); // the logits of 4 sequences
    expect(e.total).toBe(e.weights + e.kvCache + e.compute + e.overhead);
    // the compute buffer of a big vocabulary is the logits of a 512-token ubatch
    expect(e.compute).toBe(512 * 4 * (128_256 + 2 * 2048));
    // 1000 tokens take 1024 cells
    expect(estimateMemory(llama1b, { contextSize: 1000, parallel: 1, device: "cpu" }).kvCache).toBe(
      2 * 16 * 1024 * 8 * 64 * 2,
    );
    // a q8_0 cache is 34/32 bytes an element
    expect(
      estimateMemory(llama1b, { contextSize: 4096, parallel: 1, device: "cpu", kvCacheType: "q8_0" }).kvCache,
    ).toBe(2 * 16 * 4096 * 8 * 64 * (34 / 32));
  });

  it("counts sliding-window layers at the window, not the context", () => {
    // gemma-3-1b-like: 26 layers, 1 KV head of 256, window 512, every sixth layer global
    const gemma: MemoryEstimateInput = {
      tensor_bytes: 800 * MiB,
      block_count: 26,
      embedding_length: 1152,
      head_count: 4,
      head_count_kv: 1,
      key_length: 256,
      value_length: 256,
      vocab_size: 262_144,
      feed_forward_length: 6912,
      sliding_window: 512,
      sliding_window_layers: Array.from({ length: 26 }, (_, il) => il % 6 < 5),
    };
    const e = estimateMemory(gemma, { contextSize: 8192, parallel: 1, device: "cpu" });
    const global = 4; // layers 5, 11, 17, 23
    const perCell = 1 * (256 + 256) * 2;
    expect(e.kvCache).toBe(global * 8192 * perCell + (26 - global) * 1024 * perCell); // window + ubatch = 1024
    const full = estimateMemory(
      { ...gemma, sliding_window_layers: undefined },
      { contextSize: 8192, parallel: 1, device: "cpu" },
    );
    expect(full.kvCache).toBe(26 * 8192 * perCell);
  });

  it("on a GPU: the token embedding stays in host memory, and the backend gets its allowance", () => {
    const untied = { ...llama1b, output_tied: false };
    const gpu = estimateMemory(untied, { contextSize: 4096, parallel: 1, device: "gpu" });
    expect(gpu.weights).toBe(570 * MiB);
    expect(gpu.overhead).toBe(GPU_RUNTIME_OVERHEAD);
    // a tied output layer is a copy of the embedding on the GPU
    expect(estimateMemory(llama1b, { contextSize: 4096, parallel: 1, device: "gpu" }).weights).toBe(770 * MiB);
    expect(
      estimateMemory(llama1b, { contextSize: 4096, parallel: 1, device: "gpu", runtimeOverhead: 0 }).overhead,
    ).toBe(0);
  });

  it("works from a summary without n_ff, deriving it from the parameter count", () => {
    const { feed_forward_length: _ff, ...summary } = llama1b;
    const params = 2 * 1000 * 2048 + 16 * (2 * 2048 * 2048 + 2 * 2048 * 512 + 3 * 2048 * 8192);
    const e = estimateMemory(
      { ...summary, parameter_count: params, vocab_size: 1000 },
      { contextSize: 512, parallel: 1, device: "cpu" },
    );
    const withFf = estimateMemory({ ...llama1b, vocab_size: 1000 }, { contextSize: 512, parallel: 1, device: "cpu" });
    expect(Math.abs(e.compute - withFf.compute) / withFf.compute).toBeLessThan(0.02);
    expect(() => estimateMemory(llama1b, { contextSize: 0, parallel: 1, device: "cpu" })).toThrow(RangeError);
  });
});

describe("formatBytes", () => {
  it("uses binary units with three significant digits", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.50 KiB");
    expect(formatBytes(380 * MiB)).toBe("380 MiB");
    expect(formatBytes(4.07 * 1024 * MiB)).toBe("4.07 GiB");
    expect(formatBytes(-2 * MiB)).toBe("-2.00 MiB");
  });
});
