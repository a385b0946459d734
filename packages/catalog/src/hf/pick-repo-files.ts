import { ValidationError } from "@rbee/contract";
import type { HfFile } from "./hf-client.js";

/** Files at a repo's root an engine such as vLLM reads besides the weights: config, tokenizer, chat template. */
const SIDE_FILE = /^(?:[^/]+\.json|tokenizer\.model|[^/]+\.tiktoken|merges\.txt|vocab\.txt|[^/]+\.jinja)$/i;

/**
 * The files of a Hugging Face repo a safetensors engine (vLLM, TensorRT-LLM) loads: its root's
 * `config.json` (first: the catalog entry's path), the `*.safetensors` weights (and their index),
 * tokenizer and generation config. Other weights (`.bin`, `.gguf`, `original/`) are left out.
 * @throws ValidationError (400) saying what the repo lacks: a config.json, or safetensors weights.
 */
export function pickRepoFiles(files: readonly HfFile[], repo: string): HfFile[] {
  const config = files.find((f) => f.path === "config.json");
  if (config === undefined)
    throw new ValidationError(
      `${repo} has no config.json at its root: it is not a transformers model repo that vLLM or TensorRT-LLM can load (a GGUF repo is served by the llm or llama-server types)`,
      "model",
    );
  const weights = files.filter((f) => !f.path.includes("/") && f.path.toLowerCase().endsWith(".safetensors"));
  if (weights.length === 0)
    throw new ValidationError(
      `${repo} has no .safetensors weights at its root (${files.length} files: ${files
        .slice(0, 8)
        .map((f) => f.path)
        .join(", ")}${files.length > 8 ? ", ..." : ""}); rbee downloads safetensors repos only`,
      "model",
    );
  const side = files.filter((f) => f !== config && SIDE_FILE.test(f.path));
  return [config, ...weights.sort((a, b) => a.path.localeCompare(b.path)), ...side];
}
