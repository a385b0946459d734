import { readFile, rename, writeFile } from "node:fs/promises";
import { z } from "zod";
import { BACKENDS, ENGINE_IDS } from "./layout.js";

/** One binary of a build, as `engine.json` lists it. */
export const BuiltBinary = z.looseObject({
  id: z.enum(ENGINE_IDS),
  /** Relative to the build's directory: "bin/llama-server". */
  file: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size_bytes: z.number().int().nonnegative(),
  /** What `--version` said right after the build: "7000 (de3ff81)". */
  version: z.string().optional(),
});
export type BuiltBinary = z.infer<typeof BuiltBinary>;

/** `<engines>/llama.cpp/<commit7>-<backend>/engine.json`: what was built, from what, how, and when. */
export const EngineBuildRecord = z.looseObject({
  engine: z.literal("llama.cpp"),
  /** "de3ff81-cpu" */
  id: z.string().min(1),
  commit: z.string().regex(/^[0-9a-f]{40,64}$/),
  tag: z.string().optional(),
  backend: z.enum(BACKENDS),
  cmake_flags: z.array(z.string()),
  targets: z.array(z.string()),
  source: z.looseObject({ bundle: z.string(), node_llama_cpp_version: z.string() }),
  toolchain: z.looseObject({ cmake: z.string().optional(), cxx: z.string().optional() }),
  built_at: z.string(),
  /** How long this run took (an incremental rebuild takes seconds, a first build minutes). */
  duration_ms: z.number().nonnegative(),
  binaries: z.array(BuiltBinary),
});
export type EngineBuildRecord = z.infer<typeof EngineBuildRecord>;

/** One binary registered with `rbee engine add`. */
export const AddedEngine = z.looseObject({
  id: z.enum(ENGINE_IDS),
  /** Absolute; a symlink is kept as such, so that re-pointing it is seen. */
  path: z.string().min(1),
  /** What `--version` said when it was added. */
  version: z.string().optional(),
  added_at: z.string(),
});
export type AddedEngine = z.infer<typeof AddedEngine>;

/** `<engines>/engines.json` */
export const EngineRegistryFile = z.looseObject({ engines: z.array(AddedEngine) });
export type EngineRegistryFile = z.infer<typeof EngineRegistryFile>;

/** A JSON file of ours that cannot be read or does not match its schema. */
export class RecordFileError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`${path} is not a valid file (${reason}); fix or delete it`);
    this.name = "RecordFileError";
  }
}

/**
 * Reads and validates a JSON file. Undefined when it does not exist; {@link RecordFileError} naming
 * the file when it is unreadable, not JSON, or not of the schema.
 */
export async function readRecord<T extends z.ZodType>(path: string, schema: T): Promise<z.infer<T> | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new RecordFileError(path, (err as Error).message);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new RecordFileError(path, `not JSON: ${(err as Error).message}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new RecordFileError(path, `${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}`);
  }
  return parsed.data;
}

/** Writes JSON through a temporary file and a rename, so that a reader never sees half of it. */
export async function writeRecord(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
  await rename(tmp, path);
}
