import { accessSync, constants, existsSync, readdirSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { RbeeError } from "@rbee/contract";
import { cacheDir } from "@rbee/server-kit";

/** What to do when there is no llama-server, in every message that says so. */
export const LLAMA_SERVER_HINT =
  "build one with `rbee engine build llama.cpp` (needs cmake and a C++ compiler), register yours with `rbee engine add llama-server <path>`, or pass --engine <path> (or set RBEE_LLAMA_SERVER)";

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** `llama-server` on PATH. */
function onPath(env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const path = join(dir, "llama-server");
    if (executable(path)) return path;
  }
  return undefined;
}

/** The newest `<cache>/engines/llama.cpp/<build>/bin/llama-server` that `rbee engine build` made. */
function inEngineCache(env: NodeJS.ProcessEnv): string | undefined {
  const root = join(cacheDir(env), "engines", "llama.cpp");
  if (!existsSync(root)) return undefined;
  let best: { path: string; mtime: number } | undefined;
  for (const entry of readdirSync(root)) {
    if (entry.startsWith(".")) continue; // a build under way
    const path = join(root, entry, "bin", "llama-server");
    if (!executable(path)) continue;
    const mtime = statSync(path).mtimeMs;
    if (!best || mtime > best.mtime) best = { path, mtime };
  }
  return best?.path;
}

/**
 * The llama-server binary to run: `--engine` when given, else RBEE_LLAMA_SERVER, else `llama-server`
 * on PATH, else the newest one `rbee engine build llama.cpp` put in the cache. A path that was given
 * is returned as it is (its checks, with clear errors, come when it is started).
 */
export function resolveLlamaServer(given: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const chosen = given ?? env.RBEE_LLAMA_SERVER;
  if (chosen !== undefined && chosen !== "") return chosen;
  const found = onPath(env) ?? inEngineCache(env);
  if (found) return found;
  throw new RbeeError(
    `no llama-server found (not on PATH, none in ${join(cacheDir(env), "engines", "llama.cpp")}, RBEE_LLAMA_SERVER not set): ${LLAMA_SERVER_HINT}`,
    { statusCode: 400, code: "engine_not_found" },
  );
}
