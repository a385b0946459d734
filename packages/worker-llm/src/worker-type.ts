import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { type EngineBinary, LLAMA_CPP_DEFAULTS, rbeeServeCommand, type WorkerTypeDescriptor } from "@rbee/contract";
import { estimateLlamaCppWorker } from "@rbee/gguf";

const PLATFORM: Partial<Record<NodeJS.Platform, string>> = { darwin: "mac", linux: "linux", win32: "win" };

/**
 * The llama.cpp builds node-llama-cpp brings for this platform (its `@node-llama-cpp/<platform>[-backend]`
 * packages): one per backend, without loading any of them.
 */
export function nodeLlamaCppBuilds(): EngineBinary[] {
  const require = createRequire(import.meta.url);
  let pkgFile: string;
  try {
    // its exports do not include package.json: from its entry (dist/index.js), two levels up
    pkgFile = join(dirname(require.resolve("node-llama-cpp")), "..", "package.json");
  } catch {
    return [
      {
        id: "node-llama-cpp",
        path: "",
        source: "bundled",
        status: "broken",
        error: "node-llama-cpp is not installed with rbee: run `npm install` in rbee's directory",
      },
    ];
  }
  const version = (JSON.parse(readFileSync(pkgFile, "utf8")) as { version: string }).version;
  const fromLlama = createRequire(pkgFile);
  const platform = `${PLATFORM[process.platform] ?? process.platform}-${process.arch}`;
  const candidates: Array<[string, string]> = [
    [platform, "cpu"],
    [`${platform}-metal`, "metal"],
    [`${platform}-cuda`, "cuda"],
    [`${platform}-vulkan`, "vulkan"],
  ];
  const builds: EngineBinary[] = [];
  for (const [name, backend] of candidates) {
    try {
      // its entry is dist/index.js (package.json is not exported)
      const path = join(dirname(fromLlama.resolve(`@node-llama-cpp/${name}`)), "..");
      builds.push({ id: "node-llama-cpp", path, version, source: "bundled", backend, status: "ok" });
    } catch {
      // not installed for this platform
    }
  }
  return builds;
}

/**
 * The built-in llm worker: llama.cpp in this repository's process through node-llama-cpp, several
 * sequences batched in one context. Its prebuilt CPU, CUDA and Vulkan (and on macOS, Metal) builds
 * come with the npm package. This module is light: it does not load node-llama-cpp.
 */
export const llmWorkerType: WorkerTypeDescriptor = Object.freeze<WorkerTypeDescriptor>({
  id: "llm",
  description: "llama.cpp in-process (node-llama-cpp): GGUF models on CPU, CUDA, Vulkan or Metal",
  capabilities: Object.freeze(["text-generation", "chat", "json_schema", "tools", "embeddings"] as const),
  deviceKinds: Object.freeze(["cpu", "cuda", "metal", "vulkan", "rocm"] as const),
  artifact: "gguf",
  defaults: LLAMA_CPP_DEFAULTS,
  estimateMemory: estimateLlamaCppWorker,
  launch: (spec, ctx) => rbeeServeCommand("llm", spec, ctx),
  bundledEngines: nodeLlamaCppBuilds,
});
