import { existsSync } from "node:fs";
import { mkdir, rename } from "node:fs/promises";
import { join } from "node:path";
import {
  GENERATED_MODEL_DIR,
  type GgufKv,
  GgufType,
  readGgufHeaderSync,
  requireStoriesModel,
  writeGguf,
  writeLlamaGguf,
} from "@rbee/testing";

/**
 * A random-weight llama with a 32,000-token vocabulary (stories260K's 512 tokens, then made-up
 * ones): its header is about 0.8 MB, so a remote read has to grow, and its logits dominate
 * llama.cpp's compute buffer. Written once into the generated-model cache.
 */
export async function bigVocabModel(): Promise<string> {
  const dir = GENERATED_MODEL_DIR;
  const path = join(dir, "rbee-gguf-test-vocab32k-256x2-v1.gguf");
  if (existsSync(path)) return path;
  await mkdir(dir, { recursive: true });
  const vocab = join(dir, "rbee-gguf-test-vocab32k-tokenizer-v1.gguf");
  // test files run in parallel processes: each writes its own part, then renames it into place
  if (!existsSync(vocab)) {
    const part = `${vocab}.${process.pid}.part`;
    await writeGguf(part, vocabKv(32_000), []);
    await rename(part, vocab);
  }
  const part = `${path}.${process.pid}.part`;
  await writeLlamaGguf({ path: part, nEmbd: 256, nLayers: 2, nHead: 4, nHeadKv: 2, nFf: 704, vocabFrom: vocab });
  await rename(part, path);
  return path;
}

/** stories260K's tokenizer, padded to `n` tokens with plain word pieces. */
function vocabKv(n: number): GgufKv[] {
  const kv = readGgufHeaderSync(requireStoriesModel()).kv.filter(
    (e) => e.key.startsWith("tokenizer.") && !(e.key.endsWith("_token_id") && e.value === 0xffffffff),
  );
  return kv.map((e): GgufKv => {
    if (e.type !== GgufType.ARRAY) return e;
    const extra = n - e.value.length;
    if (e.key === "tokenizer.ggml.tokens")
      return { ...e, value: [...e.value, ...Array.from({ length: extra }, (_, i) => `▁w${i}`)] };
    if (e.key === "tokenizer.ggml.scores")
      return { ...e, value: [...e.value, ...Array.from({ length: extra }, (_, i) => -1000 - i)] };
    if (e.key === "tokenizer.ggml.token_type")
      return { ...e, value: [...e.value, ...Array.from({ length: extra }, () => 1)] };
    return e;
  });
}
