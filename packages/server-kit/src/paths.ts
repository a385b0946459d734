import { homedir } from "node:os";
import { join } from "node:path";

/**
 * Where rbee keeps what it caches (models, worker packages, logs, pid files, unfinished downloads):
 * RBEE_CACHE_DIR, else $XDG_CACHE_HOME/rbee, else ~/.cache/rbee.
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RBEE_CACHE_DIR) return env.RBEE_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "rbee");
}

/**
 * Where rbee keeps what a person configures (hives.conf, API keys, the cluster token):
 * RBEE_CONFIG_DIR, else $XDG_CONFIG_HOME/rbee, else ~/.config/rbee.
 */
export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RBEE_CONFIG_DIR) return env.RBEE_CONFIG_DIR;
  return join(env.XDG_CONFIG_HOME || join(homedir(), ".config"), "rbee");
}

/**
 * Where the engines rbee builds (llama.cpp's `llama-server`, ...) and the binaries registered with
 * `rbee engine add` are kept: RBEE_ENGINES_DIR, else `<cache dir>/engines`. A separate variable, so
 * that tests with a throwaway cache can still use the machine's one llama.cpp build.
 */
export function enginesDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RBEE_ENGINES_DIR) return env.RBEE_ENGINES_DIR;
  return join(cacheDir(env), "engines");
}

/** The layout under the cache dir (DESIGN.md). */
export function cachePaths(root: string) {
  return {
    root,
    models: join(root, "models"),
    workers: join(root, "workers"),
    engines: join(root, "engines"),
    tmp: join(root, "tmp"),
    logs: join(root, "logs"),
    run: join(root, "run"),
  };
}
