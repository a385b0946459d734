import { createHash } from "node:crypto";
import { basename, join, relative, resolve, sep } from "node:path";
import { SafeId, ValidationError } from "@rbee/contract";

/** The longest id derived from a file name, leaving room for a `-<hash>` suffix within SafeId's 128. */
const MAX_DERIVED_LENGTH = 96;

/**
 * True when `id` can name a catalog entry: a contract SafeId (a-z, 0-9, '.', '_', '-'; at most 128;
 * never a path) that also starts with a letter or a digit, so that it is never read as a flag
 * (`--model-id -x`) or a hidden file.
 */
export function isModelId(id: string): boolean {
  return SafeId.safeParse(id).success && /^[a-z0-9]/.test(id);
}

/** Refuses an id that could escape the models directory or confuse a command line, with a 400. */
export function assertModelId(id: string, param = "model"): string {
  if (!isModelId(id)) {
    throw new ValidationError(
      `'${id}' is not a model id: ids are 1-128 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or a digit`,
      param,
      { model: id },
    );
  }
  return id;
}

/**
 * The id a model file is registered under when none is given: its file name without `.gguf`,
 * lower-cased, every run of other characters turned into one '-'. "stories260K.gguf" → "stories260k",
 * "Llama 3.1 8B (Q4).gguf" → "llama-3.1-8b-q4". Never empty (falls back to "model").
 */
export function modelIdFromFileName(fileName: string): string {
  const id = basename(fileName)
    .replace(/\.gguf$/i, "")
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, MAX_DERIVED_LENGTH)
    .replace(/[._-]+$/, "");
  return id === "" ? "model" : id;
}

/** `<id>-<first hex digits of sha256(path)>`: the id of a file whose plain id is taken by another file. */
export function idWithPathHash(id: string, absPath: string, hexDigits = 6): string {
  const hash = createHash("sha256").update(absPath).digest("hex").slice(0, hexDigits);
  return `${id}-${hash}`;
}

/**
 * `<modelsDir>/<id>`, after checking the id, and checking again that the joined path is a direct
 * child of the models directory: no id can name a path outside it.
 */
export function modelDirOf(modelsDir: string, id: string): string {
  assertModelId(id);
  const root = resolve(modelsDir);
  const dir = join(root, id);
  const rel = relative(root, dir);
  if (rel !== id || rel.includes(sep) || rel.startsWith("..")) {
    throw new ValidationError(`model id '${id}' does not name an entry of the catalog`, "model");
  }
  return dir;
}
