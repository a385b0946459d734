import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { z } from "zod";

/**
 * Reads a small JSON state file of the queen. A missing file is `undefined`; one that is not JSON or
 * not of the schema is an error naming the file and what to do, never silently replaced.
 */
export function readJsonFile<T extends z.ZodType>(file: string, schema: T, what: string): z.output<T> | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not valid JSON; fix or delete it (${what})`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new Error(`${file} is not a valid ${what} file; fix or delete it`);
  return parsed.data;
}

/** Writes a JSON state file atomically (a temporary file renamed over it), mode 0600 in a 0700 directory. */
export function writeJsonFile(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, file);
}
