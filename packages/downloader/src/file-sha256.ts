import { stat } from "node:fs/promises";
import { PrefixHasher } from "./prefix-hasher.js";

/**
 * The sha256 of a file already on disk, lowercase hex, hashed on the downloads' hash thread so that
 * a large file does not hold up the event loop. Throws when the file is shorter than `size` (default:
 * its size now).
 */
export async function sha256OfFile(path: string, size?: number): Promise<string> {
  const bytes = size ?? (await stat(path)).size;
  return new PrefixHasher(path).digest(bytes);
}
