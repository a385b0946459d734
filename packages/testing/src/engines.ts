import { accessSync, constants, existsSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

/** Where `rbee engine build` keeps the engines it built: $RBEE_ENGINES_DIR, else the machine's real ~/.cache/rbee/engines. */
export function enginesDir(): string {
  return process.env.RBEE_ENGINES_DIR ?? join(homedir(), ".cache/rbee/engines");
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The llama-server the tests run: $RBEE_LLAMA_SERVER (a path), else the newest
 * `<engines dir>/llama.cpp/<build>/bin/llama-server` (builds still under way, `.build-*`, are skipped).
 * Tests never look in their own temporary RBEE_CACHE_DIR: the binary is built once per machine.
 */
export function findLlamaServer(): string | undefined {
  const given = process.env.RBEE_LLAMA_SERVER;
  if (given) return executable(given) ? given : undefined;
  const root = join(enginesDir(), "llama.cpp");
  if (!existsSync(root)) return undefined;
  let best: { path: string; mtime: number } | undefined;
  for (const entry of readdirSync(root)) {
    if (entry.startsWith(".")) continue;
    const path = join(root, entry, "bin/llama-server");
    if (!executable(path)) continue;
    const mtime = statSync(path).mtimeMs;
    if (!best || mtime > best.mtime) best = { path, mtime };
  }
  return best?.path;
}

let announced = false;

/**
 * The llama-server for a test file, or undefined when there is none and the file's suites should be
 * skipped (`describe.skipIf(!binary)`), with one line saying how to get it. Under CI (CI=true) a
 * missing llama-server fails instead: CI builds it (`.ci/run`), so its absence is a bug there.
 */
export function requireLlamaServerOrSkip(): string | undefined {
  const found = findLlamaServer();
  if (found) return found;
  const where = process.env.RBEE_LLAMA_SERVER
    ? `RBEE_LLAMA_SERVER=${process.env.RBEE_LLAMA_SERVER} is not an executable file`
    : `no ${join(enginesDir(), "llama.cpp/*/bin/llama-server")} and RBEE_LLAMA_SERVER is not set`;
  const message = `llama-server is missing (${where}): build it with \`npx rbee engine build llama.cpp\` (needs cmake and g++: apt-get install cmake g++), or point RBEE_LLAMA_SERVER at one`;
  if (/^(1|true|yes)$/i.test(process.env.CI ?? ""))
    throw new Error(`${message}; CI builds it, so its absence fails the test`);
  if (!announced) {
    announced = true;
    process.stderr.write(`skipping the llama-server tests: ${message}\n`);
  }
  return undefined;
}
