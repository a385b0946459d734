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

/** The layout under the cache dir (DESIGN.md). */
export function cachePaths(root: string) {
  return {
    root,
    models: join(root, "models"),
    workers: join(root, "workers"),
    tmp: join(root, "tmp"),
    logs: join(root, "logs"),
    run: join(root, "run"),
  };
}
