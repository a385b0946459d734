import { join } from "node:path";

/** The engine binaries rbee knows, by id: what `rbee engine add` accepts and what discovery looks for. */
/**
 * `ollama` is Ollama's own program (`ollama serve`), run by the Ollama adapter in its start mode;
 * `vllm` (`vllm serve`) and `trtllm-serve` are run by the vLLM and TensorRT-LLM adapters.
 */
export const ENGINE_IDS = Object.freeze([
  "llama-server",
  "ggml-rpc-server",
  "llama-bench",
  "ollama",
  "vllm",
  "trtllm-serve",
] as const);
export type EngineId = (typeof ENGINE_IDS)[number];

export function isEngineId(value: string): value is EngineId {
  return (ENGINE_IDS as readonly string[]).includes(value);
}

/** The names each engine goes by on PATH (llama.cpp called the RPC server `rpc-server` before it became `ggml-rpc-server`). */
export const PATH_NAMES: Readonly<Record<EngineId, readonly string[]>> = Object.freeze({
  "llama-server": ["llama-server"],
  "ggml-rpc-server": ["ggml-rpc-server", "rpc-server"],
  "llama-bench": ["llama-bench"],
  ollama: ["ollama"],
  vllm: ["vllm"],
  "trtllm-serve": ["trtllm-serve"],
});

/** The GPU (or CPU) backends llama.cpp can be built for; each build is its own directory. */
export const BACKENDS = Object.freeze(["cpu", "cuda", "vulkan", "metal"] as const);
export type Backend = (typeof BACKENDS)[number];

export function isBackend(value: string): value is Backend {
  return (BACKENDS as readonly string[]).includes(value);
}

/** The engine the build command knows. */
export const LLAMA_CPP = "llama.cpp";

/** The file under the engines dir that lists the binaries added with `rbee engine add`. */
export const REGISTRY_FILE = "engines.json";

/** The file in a finished build's directory that describes it. */
export const BUILD_RECORD_FILE = "engine.json";

/** The id of one build: the first 7 hex digits of llama.cpp's commit and the backend, "de3ff81-cpu". */
export function buildId(commit: string, backend: Backend): string {
  return `${commit.slice(0, 7)}-${backend}`;
}

/**
 * Where the builds of llama.cpp live under the engines dir:
 * `llama.cpp/<id>/` (bin/ + engine.json) for a finished build, `llama.cpp/.build-<id>/` (src/, build/,
 * build.log) for its work tree, kept so that a rebuild is incremental.
 */
export function llamaCppPaths(enginesDir: string, id: string) {
  const root = join(enginesDir, LLAMA_CPP);
  const work = join(root, `.build-${id}`);
  return {
    root,
    install: join(root, id),
    bin: join(root, id, "bin"),
    record: join(root, id, BUILD_RECORD_FILE),
    work,
    src: join(work, "src"),
    build: join(work, "build"),
    log: join(work, "build.log"),
    lock: join(root, `.build-${id}.lock`),
  };
}
