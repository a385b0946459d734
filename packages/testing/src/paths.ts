import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file is packages/testing/dist/paths.js once built). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** The `rbee` command, as npm links it. */
export const RBEE_BIN = join(REPO_ROOT, "packages/cli/bin/rbee.js");

/** The shared test models (CI has ../shared beside the clone); RBEE_SHARED_DIR overrides. */
export const SHARED_DIR = resolve(process.env.RBEE_SHARED_DIR ?? join(REPO_ROOT, "../shared"));

/** The real, trained 260K-parameter TinyStories model every end-to-end test runs. */
export const STORIES_MODEL = join(SHARED_DIR, "models/stories260K.gguf");
export const STORIES_SHA256 = "270cba1bd5109f42d03350f60406024560464db173c0e387d91f0426d3bd256d";

/** What greedy decoding of "Once upon a time" starts with on stories260K (llama.cpp's own output). */
export const STORIES_GREEDY_PREFIX = ", there was a little girl named Lily";

export function requireStoriesModel(): string {
  if (!existsSync(STORIES_MODEL)) {
    throw new Error(
      `test model missing: ${STORIES_MODEL}; the tests need ../shared/models/stories260K.gguf beside the repository (or RBEE_SHARED_DIR)`,
    );
  }
  return STORIES_MODEL;
}

/** Fresh RBEE_CACHE_DIR / RBEE_CONFIG_DIR for one test, so tests never touch a user's rbee. */
export function tempRbeeDirs(label = "test"): {
  root: string;
  cacheDir: string;
  configDir: string;
  env: NodeJS.ProcessEnv;
} {
  const root = mkdtempSync(join(tmpdir(), `rbee-${label}-`));
  const cacheDir = join(root, "cache");
  const configDir = join(root, "config");
  return { root, cacheDir, configDir, env: { RBEE_CACHE_DIR: cacheDir, RBEE_CONFIG_DIR: configDir } };
}
