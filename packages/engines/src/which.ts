import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";

/** True for a regular file this process may execute. */
export function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Every executable called `name` on PATH, in PATH's order (the first is what a shell runs).
 * An absolute or relative path is checked as it is.
 */
export function whichAll(name: string, env: NodeJS.ProcessEnv = process.env): string[] {
  if (name.includes("/")) return isExecutableFile(name) ? [name] : [];
  const found: string[] = [];
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "" || !isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    if (!found.includes(candidate) && isExecutableFile(candidate)) found.push(candidate);
  }
  return found;
}

/** The executable a shell would run for `name`, if any. */
export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return whichAll(name, env)[0];
}
