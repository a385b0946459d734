/**
 * The GGUF header reader of @rbee/gguf, with this package's older signatures (the header itself,
 * without the byte count), kept for the tests and helpers that use them.
 */
import * as gguf from "@rbee/gguf";

export type { GgufHeader } from "@rbee/gguf";
export { parseGgufHeader } from "@rbee/gguf";

/** Reads the header of a GGUF file or bytes: @rbee/gguf's readGgufHeader, answering only the header. */
export async function readGgufHeader(source: string | Uint8Array): Promise<gguf.GgufHeader> {
  return (await gguf.readGgufHeader(source)).header;
}

/** readGgufHeader, synchronously (for sizing a model before writing it). */
export function readGgufHeaderSync(path: string): gguf.GgufHeader {
  return gguf.readGgufHeaderSync(path).header;
}
