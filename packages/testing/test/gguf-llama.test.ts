import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, readdir, rm, stat, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, type Llama, LlamaLogLevel, readGgufFileInfo, type Token } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cachedGeneratedModel, generateLlamaGgufOfSize, planLlamaGgufOfSize } from "../src/gguf/generate-of-size.js";
import { GgmlType } from "../src/gguf/gguf-format.js";
import { readGgufHeader } from "../src/gguf/read-gguf-header.js";
import { type LlamaGgufConfig, llamaGgufLayout, writeLlamaGguf } from "../src/gguf/write-llama-gguf.js";
import { requireStoriesModel } from "../src/paths.js";

const MiB = 2 ** 20;

/** A small model (about 8 MB) with grouped-query attention. */
const SMALL: LlamaGgufConfig = { nEmbd: 256, nLayers: 5, nHead: 4, nHeadKv: 2, nFf: 704, contextLength: 512, seed: 7 };

let dir: string;
beforeAll(async () => {
  requireStoriesModel();
  dir = await mkdtemp(join(tmpdir(), "rbee-gguf-llama-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

describe("writeLlamaGguf", () => {
  it("writes the metadata and tensors llama.cpp expects, at exactly the predicted size", async () => {
    const path = join(dir, "small.gguf");
    const written = await writeLlamaGguf({ ...SMALL, path, name: "small-test" });
    const predicted = llamaGgufLayout(SMALL);
    expect((await stat(path)).size).toBe(predicted.fileBytes);
    expect(written.layout.fileBytes).toBe(predicted.fileBytes);
    expect(predicted.fileBytes).toBeGreaterThan(7.5e6);
    expect(predicted.fileBytes).toBeLessThan(8.5e6);

    const header = await readGgufHeader(path);
    const stories = await readGgufHeader(requireStoriesModel());
    const m = header.metadata;
    expect(m.get("general.architecture")).toBe("llama");
    expect(m.get("general.name")).toBe("small-test");
    expect(m.get("llama.embedding_length")).toBe(256);
    expect(m.get("llama.block_count")).toBe(5);
    expect(m.get("llama.attention.head_count")).toBe(4);
    expect(m.get("llama.attention.head_count_kv")).toBe(2);
    expect(m.get("llama.feed_forward_length")).toBe(704);
    expect(m.get("llama.context_length")).toBe(512);
    expect(m.get("llama.rope.dimension_count")).toBe(64);
    expect(m.get("tokenizer.ggml.tokens")).toEqual(stories.metadata.get("tokenizer.ggml.tokens"));
    expect(m.get("tokenizer.ggml.scores")).toEqual(stories.metadata.get("tokenizer.ggml.scores"));
    expect(m.get("tokenizer.ggml.bos_token_id")).toBe(stories.metadata.get("tokenizer.ggml.bos_token_id"));

    const names = header.tensors.map((t) => t.name);
    expect(names.slice(0, 3)).toEqual(["token_embd.weight", "output_norm.weight", "output.weight"]);
    expect(names).toHaveLength(3 + 9 * 5);
    const byName = new Map(header.tensors.map((t) => [t.name, t]));
    expect(byName.get("token_embd.weight")?.dims).toEqual([256, 512]);
    expect(byName.get("blk.4.attn_q.weight")?.dims).toEqual([256, 256]);
    expect(byName.get("blk.4.attn_k.weight")?.dims).toEqual([256, 128]);
    expect(byName.get("blk.4.ffn_down.weight")?.dims).toEqual([704, 256]);
    expect(byName.get("blk.4.ffn_up.weight")?.dims).toEqual([256, 704]);
    expect(byName.get("blk.4.ffn_norm.weight")).toMatchObject({ dims: [256], type: GgmlType.F32 });
    expect(byName.get("blk.4.ffn_up.weight")?.type).toBe(GgmlType.F16);
    expect(header.tensors.map(({ name, dims, type, offset }) => ({ name, dims, type, offset }))).toEqual(
      predicted.tensors.map(({ name, dims, type, offset }) => ({ name, dims, type, offset })),
    );
    expect(header.dataOffset).toBe(predicted.dataOffset);
    const params = 2 * 256 * 512 + 256 + 5 * (2 * 256 + 2 * 256 * 256 + 2 * 256 * 128 + 3 * 256 * 704);
    expect(predicted.params).toBe(params);
    expect(predicted.tensorBytes).toBe(2 * (params - 256 - 5 * 2 * 256) + 4 * (256 + 5 * 2 * 256));

    // node-llama-cpp's reader agrees
    const info = await readGgufFileInfo(path, { readTensorInfo: true });
    expect(info.fullTensorInfo?.length).toBe(names.length);
  });

  it("is deterministic: the bytes depend on the seed, not on the write chunk size", async () => {
    const a = join(dir, "a.gguf");
    const b = join(dir, "b.gguf");
    const c = join(dir, "c.gguf");
    const small = { ...SMALL, nLayers: 1, tensorType: "f32" } as const;
    await writeLlamaGguf({ ...small, path: a });
    await writeLlamaGguf({ ...small, path: b, chunkBytes: 4096 });
    await writeLlamaGguf({ ...small, path: c, seed: 8 });
    expect(await sha256(a)).toBe(await sha256(b));
    expect(await sha256(a)).not.toBe(await sha256(c));
  });
});

describe("generateLlamaGgufOfSize", () => {
  it("lands within 5% of the target size, exactly where the layout says", async () => {
    for (const target of [20 * MiB, 60 * MiB]) {
      const path = join(dir, `sized-${target}.gguf`);
      const written = await generateLlamaGgufOfSize(path, target);
      const size = (await stat(path)).size;
      expect(size).toBe(written.layout.fileBytes);
      expect(Math.abs(size - target) / target).toBeLessThan(0.05);
      expect(written.config.nEmbd % 64).toBe(0);
      expect(written.config.nEmbd / written.config.nHead).toBe(64);
      expect(written.config.nFf % 32).toBe(0);
      await rm(path);
    }
  });

  it("plans shapes for large targets without writing them", () => {
    for (const target of [250 * MiB, 1024 * MiB, 4096 * MiB]) {
      const plan = planLlamaGgufOfSize(target);
      expect(Math.abs(plan.layout.fileBytes - target) / target).toBeLessThan(0.05);
      expect(plan.layout.fileBytes).toBe(llamaGgufLayout(plan.config).fileBytes);
    }
    const gqa = planLlamaGgufOfSize(100 * MiB, { gqa: 4 });
    expect(gqa.config.nHead / gqa.config.nHeadKv).toBe(4);
    expect(() => planLlamaGgufOfSize(1000)).toThrow(/no llama shape/);
  });
});

describe("cachedGeneratedModel", () => {
  it("generates once, reuses the file, and regenerates a truncated one", async () => {
    const cacheDir = join(dir, "cache");
    const first = await cachedGeneratedModel(3 * MiB, { dir: cacheDir });
    expect(first.generated).toBe(true);
    expect((await stat(first.path)).size).toBe(first.layout.fileBytes);
    const second = await cachedGeneratedModel(3 * MiB, { dir: cacheDir });
    expect(second).toMatchObject({ path: first.path, generated: false });

    await truncate(first.path, 1000);
    const third = await cachedGeneratedModel(3 * MiB, { dir: cacheDir });
    expect(third).toMatchObject({ path: first.path, generated: true });
    expect((await stat(first.path)).size).toBe(first.layout.fileBytes);

    // concurrent requests share one generation; no .part file is left behind
    const [x, y] = await Promise.all([
      cachedGeneratedModel(2 * MiB, { dir: cacheDir, seed: 3 }),
      cachedGeneratedModel(2 * MiB, { dir: cacheDir, seed: 3 }),
    ]);
    expect(x.path).toBe(y.path);
    expect(x.path).not.toBe(first.path);
    expect((await readdir(cacheDir)).filter((f) => f.endsWith(".part"))).toEqual([]);
  });
});

describe("a generated model in llama.cpp (node-llama-cpp)", () => {
  let llama: Llama;
  beforeAll(async () => {
    llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.warn });
  });
  afterAll(async () => {
    await llama?.dispose();
  });

  /**
   * Loads the model and greedily evaluates ten tokens after "Once upon a time" (an end-of-text
   * token does not stop it); checks each pick's probability is a real number (no NaN logits).
   */
  async function run(path: string): Promise<Token[]> {
    const model = await llama.loadModel({ modelPath: path });
    try {
      const context = await model.createContext({ contextSize: 256, threads: 1 });
      try {
        const seq = context.getSequence();
        const prompt = [model.tokens.bos!, ...model.tokenize("Once upon a time")];
        expect(prompt.length).toBeGreaterThan(2);
        const out: Token[] = [];
        const picks = seq.evaluateWithMetadata(prompt, { confidence: true }, { temperature: 0, yieldEogToken: true });
        for await (const { token, confidence } of picks) {
          expect(confidence).toBeGreaterThan(0);
          expect(confidence).toBeLessThanOrEqual(1);
          out.push(token);
          if (out.length >= 10) break;
        }
        return out;
      } finally {
        await context.dispose();
      }
    } finally {
      await model.dispose();
    }
  }

  it("loads and generates valid tokens (small, GQA, F16)", async () => {
    const path = join(dir, "run-small.gguf");
    await writeLlamaGguf({ ...SMALL, path });
    const tokens = await run(path);
    expect(tokens).toHaveLength(10);
    for (const t of tokens) {
      expect(Number.isInteger(t)).toBe(true);
      expect(t).toBeGreaterThanOrEqual(0);
      expect(t).toBeLessThan(512);
    }
    // same weights, same greedy output
    expect(await run(path)).toEqual(tokens);
  });

  it("loads and generates with a ~60 MB model, and an F32 one", async () => {
    const big = join(dir, "run-60mb.gguf");
    await generateLlamaGgufOfSize(big, 60 * MiB);
    const tokens = await run(big);
    expect(tokens).toHaveLength(10);
    expect(tokens.every((t) => t >= 0 && t < 512)).toBe(true);

    const f32 = join(dir, "run-f32.gguf");
    await writeLlamaGguf({ ...SMALL, nLayers: 2, tensorType: "f32", path: f32 });
    expect((await run(f32)).every((t) => t >= 0 && t < 512)).toBe(true);
  });
});
