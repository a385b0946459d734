import { open } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { HubFileEntry } from "./hub-files.js";
import type { HubFaults } from "./hub-types.js";

/** What a `Range` header asks of a body of `size` bytes (RFC 9110 §14): [start, end] inclusive. */
export type RangeRequest = { kind: "whole" } | { kind: "part"; start: number; end: number } | { kind: "unsatisfiable" };

/**
 * Reads a `Range` header. Anything but one well-formed byte range is ignored (the whole body is
 * sent, as the RFC allows); a range that starts past the end cannot be satisfied (416).
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (!header) return { kind: "whole" };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === "" && m[2] === "")) return { kind: "whole" };
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "part", start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== "" && Number(m[2]) < start) return { kind: "whole" };
  if (start >= size) return { kind: "unsatisfiable" };
  return { kind: "part", start, end };
}

/** One shared link: body bytes of all throttled responses together go out at `bytesPerSecond`. */
export class Throttle {
  #nextAt = 0;

  /** Resolves when `n` more bytes may go out at `bytesPerSecond`. */
  async take(n: number, bytesPerSecond: number): Promise<void> {
    const now = performance.now();
    const at = Math.max(now, this.#nextAt);
    this.#nextAt = at + (n / bytesPerSecond) * 1000;
    if (at > now + 1) await new Promise((resolve) => setTimeout(resolve, at - now));
  }
}

export interface FileResponseContext {
  faults: HubFaults;
  throttle: Throttle;
  /** Counts body bytes handed to the socket. */
  count(n: number): void;
  /** Called with the status once it is decided. */
  status(code: number): void;
}

const CHUNK = 1024 * 1024;

/**
 * Answers a GET or HEAD for a file's bytes: `Accept-Ranges`, `ETag`, 206 with `Content-Range` for
 * a range, 416 past the end, `If-Range` honoured; and the file faults (ignoreRange, bytesPerSecond,
 * dropAfterBytes/dropOnce, corruptByteAt).
 */
export async function sendFileBytes(
  req: IncomingMessage,
  res: ServerResponse,
  file: HubFileEntry,
  headers: Record<string, string | number>,
  etag: string,
  ctx: FileResponseContext,
): Promise<void> {
  const { faults } = ctx;
  let range = faults.ignoreRange ? ({ kind: "whole" } as const) : parseRange(req.headers.range, file.size);
  const ifRange = req.headers["if-range"];
  if (ifRange !== undefined && ifRange !== etag) range = { kind: "whole" };
  const base = {
    ...headers,
    "accept-ranges": "bytes",
    etag,
    "last-modified": file.lastModified.toUTCString(),
  };
  if (range.kind === "unsatisfiable") {
    ctx.status(416);
    res.writeHead(416, { ...base, "content-range": `bytes */${file.size}`, "content-length": 0 });
    res.end();
    return;
  }
  const start = range.kind === "part" ? range.start : 0;
  const end = range.kind === "part" ? range.end + 1 : file.size;
  const status = range.kind === "part" ? 206 : 200;
  ctx.status(status);
  res.writeHead(status, {
    ...base,
    "content-length": end - start,
    ...(range.kind === "part" ? { "content-range": `bytes ${start}-${end - 1}/${file.size}` } : {}),
  });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  await streamBody(res, file, start, end, ctx);
}

async function streamBody(
  res: ServerResponse,
  file: HubFileEntry,
  start: number,
  end: number,
  ctx: FileResponseContext,
): Promise<void> {
  const { faults } = ctx;
  const fh = "path" in file.source ? await open(file.source.path, "r") : undefined;
  const content = "content" in file.source ? file.source.content : undefined;
  const read = async (pos: number, n: number): Promise<Buffer> => {
    if (content) return content.subarray(pos, pos + n);
    const buf = Buffer.allocUnsafe(n);
    const { bytesRead } = await fh!.read(buf, 0, n, pos);
    if (bytesRead !== n) throw new Error(`${file.path}: short read at ${pos}`);
    return buf;
  };
  let gone = false;
  res.once("close", () => {
    gone = true;
  });
  try {
    let pos = start;
    let sent = 0;
    let next: Promise<Buffer> | undefined;
    while (pos < end && !gone) {
      const rate = faults.bytesPerSecond;
      const chunk = rate ? Math.max(1024, Math.min(64 * 1024, Math.floor(rate / 20))) : CHUNK;
      let n = Math.min(chunk, end - pos);
      const dropAt = faults.dropAfterBytes;
      if (dropAt !== undefined) {
        if (sent >= dropAt) {
          if (faults.dropOnce) {
            delete faults.dropAfterBytes;
            delete faults.dropOnce;
          }
          res.destroy();
          return;
        }
        n = Math.min(n, dropAt - sent);
      }
      // read ahead while the socket drains (only when the next read is the expected one)
      const buf = next && !rate && dropAt === undefined ? await next : await read(pos, n);
      next = undefined;
      let bytes = buf.length > n ? buf.subarray(0, n) : buf;
      const corruptAt = faults.corruptByteAt;
      if (corruptAt !== undefined && corruptAt >= pos && corruptAt < pos + bytes.length) {
        delete faults.corruptByteAt;
        bytes = Buffer.from(bytes); // a copy: in-memory files stay as they are
        bytes[corruptAt - pos] = (bytes[corruptAt - pos] ?? 0) ^ 0xff;
      }
      if (rate) await ctx.throttle.take(bytes.length, rate);
      if (gone) return;
      const dropsNow = faults.dropAfterBytes !== undefined && sent + bytes.length >= faults.dropAfterBytes;
      if (dropsNow) {
        // the bytes before the drop reach the client; then the connection goes
        const closed = drainOrClose(res);
        await new Promise<void>((resolve) => {
          res.write(bytes, () => resolve());
          void closed.then(resolve);
        });
      } else {
        res.write(bytes);
      }
      ctx.count(bytes.length);
      pos += bytes.length;
      sent += bytes.length;
      if (dropsNow) continue;
      if (pos < end && !rate) {
        next = read(pos, Math.min(CHUNK, end - pos));
        next.catch(() => undefined);
      }
      if (res.writableNeedDrain) await drainOrClose(res);
    }
    if (next) await next.catch(() => undefined);
    if (!gone) res.end();
  } finally {
    await fh?.close();
  }
}

/** Resolves on the response's next `drain` or `close`, whichever comes first. */
function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
