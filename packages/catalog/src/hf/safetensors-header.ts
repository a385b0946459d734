import { open } from "node:fs/promises";

/** The most a safetensors header may take (the format's own limit is 100 MB). */
const MAX_HEADER = 100 * 1024 * 1024;

/**
 * The number of parameters in a `.safetensors` file, from its header only: an 8-byte little-endian
 * length, then a JSON object of `name → {dtype, shape, data_offsets}` (and `__metadata__`). Each
 * tensor counts the product of its shape.
 * @throws Error saying why the file is not a safetensors file.
 */
export async function safetensorsParameters(path: string): Promise<number> {
  const fh = await open(path, "r");
  try {
    const head = Buffer.alloc(8);
    const { bytesRead } = await fh.read(head, 0, 8, 0);
    if (bytesRead < 8) throw new Error(`${path} is too short to be a safetensors file`);
    const length = Number(head.readBigUInt64LE(0));
    if (length <= 0 || length > MAX_HEADER)
      throw new Error(`${path} does not start with a safetensors header (length ${length})`);
    const json = Buffer.alloc(length);
    await fh.read(json, 0, length, 8);
    const header = JSON.parse(json.toString("utf8")) as Record<string, { shape?: unknown }>;
    let n = 0;
    for (const [name, t] of Object.entries(header)) {
      if (name === "__metadata__" || !Array.isArray(t.shape)) continue;
      n += (t.shape as number[]).reduce((a, b) => a * b, 1);
    }
    return n;
  } finally {
    await fh.close();
  }
}
