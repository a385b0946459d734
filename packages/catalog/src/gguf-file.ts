import { open, stat } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { ModelNotFoundError, ValidationError } from "@rbee/contract";

/** The first four bytes of every GGUF file. */
export const GGUF_MAGIC = "GGUF";

/**
 * Checks that `absPath` is an absolute path of a readable regular file that starts with the GGUF
 * magic, and answers its size.
 *
 * @throws ValidationError (400) for a relative path, a directory or other non-file, an unreadable
 *   file, or a file that is not GGUF; ModelNotFoundError (404) when nothing is at the path.
 */
export async function checkGgufFile(absPath: string): Promise<{ sizeBytes: number }> {
  if (!isAbsolute(absPath)) {
    throw new ValidationError(
      `'${absPath}' is not an absolute path; give the full path of the .gguf file on this machine`,
      "ref",
    );
  }
  let info: Awaited<ReturnType<typeof stat>>;
  try {
    info = await stat(absPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      throw new ModelNotFoundError(absPath, "there is no file at that path on this machine");
    }
    throw new ValidationError(`cannot read '${absPath}': ${(err as Error).message}`, "ref");
  }
  if (!info.isFile()) {
    throw new ValidationError(`'${absPath}' is not a file; give the path of a .gguf model file`, "ref");
  }
  const magic = await readMagic(absPath);
  if (magic !== GGUF_MAGIC) {
    throw new ValidationError(
      `'${absPath}' is not a GGUF model (it does not start with the bytes "GGUF"); convert it to GGUF or give another file`,
      "ref",
      { path: absPath },
    );
  }
  return { sizeBytes: info.size };
}

async function readMagic(absPath: string): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(absPath, "r");
    const buf = Buffer.alloc(4);
    const { bytesRead } = await handle.read(buf, 0, 4, 0);
    return buf.subarray(0, bytesRead).toString("latin1");
  } catch (err) {
    throw new ValidationError(`cannot read '${absPath}': ${(err as Error).message}`, "ref");
  } finally {
    await handle?.close();
  }
}
