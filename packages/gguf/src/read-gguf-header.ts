import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { open } from "node:fs/promises";
import { GgufFormatError } from "./errors.js";
import { type GgufHeader, tryParseGgufHeader } from "./header-parser.js";
import { HttpRangeSource, type RemoteSource } from "./http-range-source.js";

export type { RemoteSource } from "./http-range-source.js";

/** Where a GGUF header comes from: a file path, a URL (read with HTTP Range requests), or bytes. */
export type GgufSource = string | RemoteSource | Uint8Array;

/** A parsed header and how many bytes of the source it took to get it. */
export interface GgufHeaderRead {
  header: GgufHeader;
  /**
   * Bytes read from the source: from disk for a path, received over the network for a URL (every
   * body byte, redirects included), the header's own size for bytes in memory.
   */
  bytesRead: number;
}

/** The first read of a local file; each retry doubles it. */
const LOCAL_INITIAL = 1 << 20;
/** The first Range request; each retry asks for as much again (so at most about twice the header is fetched). */
const REMOTE_INITIAL = 256 << 10;
/** No real header is this large (a 256k-token vocabulary takes about 10 MB): past it, give up. */
const MAX_HEADER_BYTES = 512 << 20;

/**
 * Reads the header of a GGUF file (v2 or v3): the metadata and the tensor infos, never the tensor
 * data. A path is read from disk; `{url, headers}` with HTTP Range requests (256 KiB first, then
 * growing geometrically until the header and tensor infos parse), following redirects and dropping
 * `Authorization` when one leaves the origin; bytes are parsed as they are.
 *
 * @throws GgufFormatError when the bytes are not a GGUF header (bad magic, truncated, unknown type);
 *   RemoteFileError when the server answers an error or cannot be reached; fs errors for a path.
 */
export async function readGgufHeader(source: GgufSource): Promise<GgufHeaderRead> {
  if (source instanceof Uint8Array) {
    const header = tryParseGgufHeader(source, true) as GgufHeader;
    return { header, bytesRead: header.headerBytes };
  }
  if (typeof source === "string") {
    const fh = await open(source, "r");
    try {
      const size = (await fh.stat()).size;
      return await growUntilParsed(LOCAL_INITIAL, size, async (offset, length) => {
        const buf = new Uint8Array(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        return buf.subarray(0, bytesRead);
      });
    } finally {
      await fh.close();
    }
  }
  const remote = new HttpRangeSource(source);
  try {
    const { header } = await growUntilParsed(REMOTE_INITIAL, undefined, (offset, length) =>
      remote.read(offset, length),
    );
    return { header, bytesRead: remote.bytesFetched };
  } finally {
    await remote.close();
  }
}

/** readGgufHeader for a local file, synchronously (for sizing a model before writing it). */
export function readGgufHeaderSync(path: string): GgufHeaderRead {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    let buf = new Uint8Array(0);
    for (let want = Math.min(size, LOCAL_INITIAL); ; want = Math.min(size, want * 2)) {
      const grown = new Uint8Array(want);
      grown.set(buf);
      const n = readSync(fd, grown, buf.length, want - buf.length, buf.length);
      buf = grown.subarray(0, buf.length + n);
      const header = tryParseGgufHeader(buf, buf.length >= size);
      if (header) return { header, bytesRead: buf.length };
    }
  } finally {
    closeSync(fd);
  }
}

/** Parses a GGUF header from bytes that hold at least the whole header. */
export function parseGgufHeader(bytes: Uint8Array): GgufHeader {
  return tryParseGgufHeader(bytes, true) as GgufHeader;
}

/**
 * Reads a growing prefix of a file until its header parses: `initial` bytes, then twice as many,
 * each time reading only the bytes not yet read. `size` is the file's size when known.
 */
async function growUntilParsed(
  initial: number,
  size: number | undefined,
  read: (offset: number, length: number) => Promise<Uint8Array>,
): Promise<GgufHeaderRead> {
  let buf = new Uint8Array(0);
  let ended = false;
  for (let want = initial; ; want *= 2) {
    if (size !== undefined) want = Math.min(want, size);
    if (!ended && want > buf.length) {
      const chunk = await read(buf.length, want - buf.length);
      if (chunk.length < want - buf.length) ended = true;
      const grown = new Uint8Array(buf.length + chunk.length);
      grown.set(buf);
      grown.set(chunk, buf.length);
      buf = grown;
    }
    if (size !== undefined && buf.length >= size) ended = true;
    const header = tryParseGgufHeader(buf, ended);
    if (header) return { header, bytesRead: buf.length };
    if (want >= MAX_HEADER_BYTES) {
      throw new GgufFormatError(
        `not a GGUF file this reader can use: the header goes on past ${MAX_HEADER_BYTES} bytes`,
      );
    }
  }
}
