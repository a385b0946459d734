import { pipeline } from "node:stream/promises";
import { RbeeError } from "@rbee/contract";
import type { HttpContext } from "@rbee/server-kit";
import type { OpenModelFile } from "./model-sharing.js";

/** Bytes read from disk at a time: large reads keep the syscalls few at LAN speeds. */
const READ_CHUNK = 1024 * 1024;

/** An inclusive byte range of a file. */
export interface ByteRange {
  first: number;
  last: number;
}

/** A Range header this server cannot serve: malformed, several ranges, or past the end of the file. */
export class RangeNotSatisfiableError extends RbeeError {
  constructor(header: string, size: number, why: string) {
    super(
      `cannot serve 'Range: ${header}' from a file of ${size} bytes: ${why}; ask for one range, bytes=<first>-[<last>] with first < ${size}, or none for the whole file`,
      { statusCode: 416, code: "range_not_satisfiable", details: { size } },
    );
  }
}

/**
 * The one range a `Range` header asks for, clamped to the file (RFC 9110 §14.1.2): `bytes=a-b`,
 * `bytes=a-` or the suffix `bytes=-n`.
 * @throws RangeNotSatisfiableError for anything else, or a range that starts past the end.
 */
export function parseRange(header: string, size: number): ByteRange {
  const spec = header.trim();
  const m = /^bytes=(\d*)-(\d*)$/i.exec(spec);
  if (!m) {
    const why = spec.includes(",") ? "only one range is served at a time" : "it is not a byte range";
    throw new RangeNotSatisfiableError(header, size, why);
  }
  const [, a = "", b = ""] = m;
  if (a === "" && b === "") throw new RangeNotSatisfiableError(header, size, "it names no bytes");
  if (a === "") {
    const n = Number(b);
    if (n === 0 || size === 0) throw new RangeNotSatisfiableError(header, size, "it asks for no bytes");
    return { first: Math.max(0, size - n), last: size - 1 };
  }
  const first = Number(a);
  const last = b === "" ? size - 1 : Math.min(Number(b), size - 1);
  if (b !== "" && Number(b) < first) throw new RangeNotSatisfiableError(header, size, "its end is before its start");
  if (first >= size) throw new RangeNotSatisfiableError(header, size, "it starts at or past the end of the file");
  return { first, last };
}

/**
 * Answers a GET or HEAD with an opened file: the whole file (200) or the one range asked for (206,
 * Content-Range), `Accept-Ranges: bytes`, an ETag, and 416 with `Content-Range: bytes *\/size` for a
 * range it cannot serve. The body streams from disk with backpressure (the socket drains before
 * more is read). A client that goes away ends the stream quietly. The handle is closed in all cases.
 */
export async function sendFile(ctx: HttpContext, file: OpenModelFile): Promise<void> {
  const { handle, size, etag } = file;
  let range: ByteRange = { first: 0, last: size - 1 };
  let partial = false;
  try {
    const header = ctx.header("range");
    // If-Range: a range only while the file is the one the client started with
    const ifRange = ctx.header("if-range");
    if (header !== undefined && (ifRange === undefined || ifRange === etag)) {
      range = parseRange(header, size);
      partial = true;
    }
  } catch (err) {
    await handle.close();
    if (!(err instanceof RangeNotSatisfiableError)) throw err;
    ctx.logFields.error_code = err.code;
    ctx.send(416, err.toBody(), { "content-range": `bytes */${size}`, "accept-ranges": "bytes", etag });
    return;
  }
  const length = size === 0 ? 0 : range.last - range.first + 1;
  ctx.res.writeHead(partial ? 206 : 200, {
    "content-type": "application/octet-stream",
    "content-length": length,
    "accept-ranges": "bytes",
    etag,
    ...(partial ? { "content-range": `bytes ${range.first}-${range.last}/${size}` } : {}),
  });
  if (ctx.method === "HEAD" || length === 0) {
    await handle.close();
    ctx.res.end();
    return;
  }
  ctx.logFields.bytes = length;
  const body = handle.createReadStream({ start: range.first, end: range.last, highWaterMark: READ_CHUNK });
  try {
    await pipeline(body, ctx.res);
  } catch (err) {
    // a fetching hive that stops (cancelled, or resuming elsewhere) is not an error of this one
    if (!ctx.signal.aborted && (err as NodeJS.ErrnoException).code !== "ERR_STREAM_PREMATURE_CLOSE") throw err;
    ctx.logFields.aborted = true;
  }
}
