import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./paths.js";

/** The echo worker packaged (examples/echo-worker-package: its manifest and the example's program). */
export const ECHO_PACKAGE_DIR = join(REPO_ROOT, "examples/echo-worker-package");

/**
 * A copy of the echo worker's package in `dir`, with manifest fields replaced (another version, id,
 * ...); `entrySource` replaces the program (e.g. one that never becomes ready). Returns `dir`.
 */
export function writeEchoPackage(dir: string, manifest: Record<string, unknown> = {}, entrySource?: string): string {
  mkdirSync(dir, { recursive: true });
  const base = JSON.parse(readFileSync(join(ECHO_PACKAGE_DIR, "rbee-worker.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(dir, "rbee-worker.json"), JSON.stringify({ ...base, ...manifest }, null, 2));
  if (entrySource === undefined) copyFileSync(join(ECHO_PACKAGE_DIR, "echo-worker.mjs"), join(dir, "echo-worker.mjs"));
  else writeFileSync(join(dir, "echo-worker.mjs"), entrySource);
  return dir;
}
