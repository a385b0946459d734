import { getLlama, type Llama, LlamaLogLevel } from "node-llama-cpp";

/**
 * A CPU llama.cpp made ready before this process knew its model. This module imports node-llama-cpp
 * and nothing else (`@rbee/worker-llm/prewarm`), so that a spare worker process starts
 * node-llama-cpp's binary test (a child process, about half a second) before it loads the rest of
 * the worker: the two then run side by side.
 */
let prewarmed: Promise<Llama> | undefined;

/** Starts loading llama.cpp's CPU build (once per process); the first CPU engine takes it. */
export function prewarmCpuLlama(): Promise<Llama> {
  prewarmed ??= getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.warn, logger: () => {} });
  return prewarmed;
}

/** The prewarmed CPU llama.cpp, once (a second engine of the process loads its own). */
export function takePrewarmed(): Promise<Llama> | undefined {
  const p = prewarmed;
  prewarmed = undefined;
  return p;
}
