#!/usr/bin/env node
// The `rbee` command. Plain JavaScript so that npm can link it before the TypeScript build has run.
import module from "node:module";

// Node 22.1+ keeps compiled code on disk between runs (the CLI, the queen, the hive and every worker
// start this way); Node 20 has no compile cache and starts as before.
module.enableCompileCache?.();
import("../dist/main.js").catch((err) => {
  if (err && err.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes("dist/main.js")) {
    console.error("rbee: the build output is missing; run `npm install` (or `npm run build`) in the rbee checkout");
    process.exit(70);
  }
  throw err;
});
