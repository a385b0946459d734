import { createReadStream } from "node:fs";
import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { BlobStore } from "./catalog-store.js";

/** Blobs as files in a directory, named by key (the artifact's sha256); written whole, then renamed. */
export class DirectoryBlobStore implements BlobStore {
  constructor(readonly dir: string) {}

  #path(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`not a blob key: ${key}`);
    return join(this.dir, key.slice(0, 2), key);
  }

  async put(key: string, data: Buffer): Promise<void> {
    const path = this.#path(key);
    await mkdir(join(this.dir, key.slice(0, 2)), { recursive: true });
    await writeFile(`${path}.tmp`, data);
    await rename(`${path}.tmp`, path);
  }

  async size(key: string): Promise<number> {
    return (await stat(this.#path(key))).size;
  }

  async open(key: string, start?: number, end?: number) {
    const path = this.#path(key);
    const size = (await stat(path)).size;
    // 1 MiB reads: with the default 64 KiB a download ran at half the speed of the same bytes from S3
    const file = createReadStream(path, { start, end, highWaterMark: 1024 * 1024 });
    const stream = Readable.toWeb(file) as ReadableStream<Uint8Array>;
    return { size, stream };
  }
}
