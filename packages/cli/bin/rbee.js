#!/usr/bin/env node
// The `rbee` command. Plain JavaScript so that npm can link it before the TypeScript build has run.
import module from "node:module";

// Node 22.1+ keeps compiled code on disk between runs (the CLI, the queen, the hive and every worker
// start this way); Node 20 has no compile cache and starts as before. Node processes started
// otherwise (node-llama-cpp's binary test, a child process of every llm worker that loads most of
// node-llama-cpp) use the same cache through the environment.
const cache = module.enableCompileCache?.();
if (cache?.directory && !process.env.NODE_COMPILE_CACHE) process.env.NODE_COMPILE_CACHE = cache.directory;
import("../dist/main.js").catch((err) => {
  if (err && err.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes("dist/main.js")) {
    console.error("rbee: the build output is missing; run `npm install` (or `npm run build`) in the rbee checkout");
    process.exit(70);
  }
  throw err;
});
