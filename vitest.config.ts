import { existsSync, realpathSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

/**
 * Hives take model files only from directories their owner allows (docs/security.md): the tests'
 * models live in the shared test data and in temporary directories.
 */
const SHARED_DIR = resolve(process.env.RBEE_SHARED_DIR ?? fileURLToPath(new URL("../shared", import.meta.url)));
const SHARED_MODELS = join(SHARED_DIR, "models");
/**
 * The shared models (and where they really are, when ../shared is a link: a hive follows links and
 * takes a model only where its target lies), temporary directories, and the generated GGUFs' cache
 * (`<repo>/.cache/models`).
 */
const TEST_MODEL_DIRS = [
  SHARED_MODELS,
  ...(existsSync(SHARED_MODELS) ? [realpathSync(SHARED_MODELS)] : []),
  tmpdir(),
  fileURLToPath(new URL("./.cache/models", import.meta.url)),
].join(delimiter);

// Tests run against the built packages (npm test builds first) and start real daemons and
// child processes, so they are slow-ish and CPU-bound: two files at a time on a 2-core machine.
export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    fileParallelism: true,
    // hives keep no spare worker process in tests (one per hive would load llama.cpp for nothing);
    // the tests of the spare itself turn it on. An invalid change of a worker's state throws in tests.
    env: {
      RBEE_MODELS_DIRS: process.env.RBEE_MODELS_DIRS ?? TEST_MODEL_DIRS,
      RBEE_SPARE_WORKER: "0",
      RBEE_STRICT_STATES: "1",
    },
  },
});
