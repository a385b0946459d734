/** A well-known GGUF model that can be named by a short name (`rbee infer -m qwen2.5-0.5b`). */
export interface ShortModelName {
  name: string;
  repo: string;
  revision: string;
  path: string;
  description: string;
  /** The file's size in bytes where a public source states it exactly (the Hub's answer wins). */
  sizeBytes?: number;
  /** Where the repo and file name were checked. */
  verified: string;
}

/**
 * The built-in short names. Each repo and file name was checked against public material (model
 * cards, and code that downloads the exact `https://huggingface.co/<repo>/resolve/main/<file>`);
 * none of them is gated. Short names never look like a file-derived catalog id (`stories260k`
 * stays the catalog id of a registered stories260K.gguf).
 */
export const SHORT_MODEL_NAMES: readonly ShortModelName[] = [
  {
    name: "tinystories-260k",
    repo: "ggml-org/models-moved",
    revision: "main",
    path: "tinyllamas/stories260K.gguf",
    description: "TinyStories 260K (llama, F32): a 1.2 MB test model",
    sizeBytes: 1_185_376,
    verified:
      "../shared/models/stories260K.gguf is this file (sha256 270cba1b…); public scripts pin ggml-org/models-moved@499bc882 tinyllamas/stories260K.gguf with that sha256 and size, and note that ggml-org/models was renamed to ggml-org/models-moved (the old name redirects); llama.cpp's server tests load it from ggml-org/models",
  },
  {
    name: "qwen2.5-0.5b",
    repo: "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
    revision: "main",
    path: "qwen2.5-0.5b-instruct-q4_k_m.gguf",
    description: "Qwen2.5 0.5B Instruct, Q4_K_M (about 400 MB)",
    verified:
      "public code downloading https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q4_k_m.gguf",
  },
  {
    name: "qwen2.5-1.5b",
    repo: "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
    revision: "main",
    path: "qwen2.5-1.5b-instruct-q4_k_m.gguf",
    description: "Qwen2.5 1.5B Instruct, Q4_K_M (about 1.1 GB)",
    verified:
      "several public projects download https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/qwen2.5-1.5b-instruct-q4_k_m.gguf",
  },
  {
    name: "llama3.2-1b",
    repo: "bartowski/Llama-3.2-1B-Instruct-GGUF",
    revision: "main",
    path: "Llama-3.2-1B-Instruct-Q4_K_M.gguf",
    description: "Llama 3.2 1B Instruct, Q4_K_M (808 MB)",
    sizeBytes: 807_694_464,
    verified:
      "public code downloading https://huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF/resolve/main/Llama-3.2-1B-Instruct-Q4_K_M.gguf; two independent sources give 807,694,464 bytes",
  },
  {
    name: "llama3.2-3b",
    repo: "bartowski/Llama-3.2-3B-Instruct-GGUF",
    revision: "main",
    path: "Llama-3.2-3B-Instruct-Q4_K_M.gguf",
    description: "Llama 3.2 3B Instruct, Q4_K_M (about 2 GB)",
    verified: "public model lists name bartowski/Llama-3.2-3B-Instruct-GGUF with Llama-3.2-3B-Instruct-Q4_K_M.gguf",
  },
  {
    name: "smollm2-360m",
    repo: "bartowski/SmolLM2-360M-Instruct-GGUF",
    revision: "main",
    path: "SmolLM2-360M-Instruct-Q4_K_M.gguf",
    description: "SmolLM2 360M Instruct, Q4_K_M (271 MB)",
    sizeBytes: 270_590_880,
    verified:
      "public code downloading https://huggingface.co/bartowski/SmolLM2-360M-Instruct-GGUF/resolve/main/SmolLM2-360M-Instruct-Q4_K_M.gguf, with its size",
  },
  {
    name: "smollm2-1.7b",
    repo: "bartowski/SmolLM2-1.7B-Instruct-GGUF",
    revision: "main",
    path: "SmolLM2-1.7B-Instruct-Q4_K_M.gguf",
    description: "SmolLM2 1.7B Instruct, Q4_K_M (1.06 GB)",
    sizeBytes: 1_055_609_824,
    verified:
      "public code downloading https://huggingface.co/bartowski/SmolLM2-1.7B-Instruct-GGUF/resolve/main/SmolLM2-1.7B-Instruct-Q4_K_M.gguf, with its size",
  },
  {
    name: "phi3-mini",
    repo: "microsoft/Phi-3-mini-4k-instruct-gguf",
    revision: "main",
    path: "Phi-3-mini-4k-instruct-q4.gguf",
    description: "Phi-3 mini 4k Instruct, 4-bit (about 2.2 GB)",
    verified:
      "public code downloading https://huggingface.co/microsoft/Phi-3-mini-4k-instruct-gguf/resolve/main/Phi-3-mini-4k-instruct-q4.gguf",
  },
  {
    name: "gemma3-1b",
    repo: "ggml-org/gemma-3-1b-it-GGUF",
    revision: "main",
    path: "gemma-3-1b-it-Q4_K_M.gguf",
    description: "Gemma 3 1B Instruct, Q4_K_M (about 800 MB)",
    verified:
      "public code downloading https://huggingface.co/ggml-org/gemma-3-1b-it-GGUF/resolve/main/gemma-3-1b-it-Q4_K_M.gguf",
  },
  {
    name: "tinyllama-1.1b",
    repo: "TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF",
    revision: "main",
    path: "tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf",
    description: "TinyLlama 1.1B Chat v1.0, Q4_K_M (about 640 MB)",
    verified:
      "public code downloading https://huggingface.co/TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/resolve/main/tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf",
  },
];

/** The short name's entry (any case), or undefined. */
export function findShortName(name: string): ShortModelName | undefined {
  const lower = name.toLowerCase();
  return SHORT_MODEL_NAMES.find((s) => s.name === lower);
}
