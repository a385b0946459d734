#!/usr/bin/env node
// The `rbee` command. Plain JavaScript so that npm can link it before the TypeScript build has run.
import("../dist/main.js").catch((err) => {
  if (err && err.code === "ERR_MODULE_NOT_FOUND" && String(err.message).includes("dist/main.js")) {
    console.error("rbee: the build output is missing; run `npm install` (or `npm run build`) in the rbee checkout");
    process.exit(70);
  }
  throw err;
});
