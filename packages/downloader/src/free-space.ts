import { statfs } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { InsufficientDiskError } from "./errors.js";

/** Bytes an unprivileged process may still write on the filesystem holding `dir` (or its nearest existing parent). */
export async function freeBytes(dir: string): Promise<number> {
  let at = resolve(dir);
  for (;;) {
    try {
      const s = await statfs(at);
      return s.bavail * s.bsize;
    } catch (err) {
      const parent = dirname(at);
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" || parent === at) throw err;
      at = parent;
    }
  }
}

/**
 * Throws InsufficientDiskError (507, "insufficient_disk") when the filesystem holding `dir` has
 * fewer than `needBytes` free; the message names the need, what is free, the directory and what
 * to do. `dir` need not exist yet.
 */
export async function checkFreeSpace(dir: string, needBytes: number): Promise<void> {
  if (!(needBytes > 0)) return;
  const free = await freeBytes(dir);
  if (free < needBytes) throw new InsufficientDiskError(resolve(dir), needBytes, free);
}
