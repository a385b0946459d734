import { RemoteFileError, redactUrl } from "./errors.js";

/** A remote file, read from the start in growing pieces. */
export interface RemoteSource {
  url: string;
  /** Sent with every request; `Authorization` is dropped when a redirect leaves the origin. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Gives up on a request whose response headers have not arrived in time. Default 30 s. */
  timeoutMs?: number;
}

const MAX_REDIRECTS = 10;
/** A read that fails for a reason that may pass (a dropped connection, a timeout, 429, 5xx) is tried this often in all. */
const ATTEMPTS = 3;
const RETRY_DELAY_MS = 250;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * Reads a remote file front to back with HTTP Range requests (`bytes=start-end`), following
 * redirects by hand: a redirect to another origin (a CDN) drops the `Authorization` header, and
 * later requests go straight to where the first one landed. A server that ignores Range and sends
 * the whole file is read only as far as needed, then the connection is closed. A read that fails
 * for a reason that may pass (a dropped connection, a timeout, 429, 5xx) is asked again, up to
 * three times in all, from the same offset. `bytesFetched` counts every body byte received.
 */
export class HttpRangeSource {
  bytesFetched = 0;
  #url: string;
  #headers: Record<string, string>;
  readonly #signal: AbortSignal | undefined;
  readonly #timeoutMs: number;
  /** Set once a server answered 200 to a Range request: the rest of the file comes from this body. */
  #stream: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #leftover: Uint8Array = new Uint8Array(0);

  constructor(source: RemoteSource) {
    this.#url = source.url;
    this.#headers = { ...source.headers };
    this.#signal = source.signal;
    this.#timeoutMs = source.timeoutMs ?? 30_000;
  }

  /** Up to `length` bytes from `offset` (always the end of what was read so far); fewer only at the end of the file. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#read(offset, length);
      } catch (err) {
        const transient = err instanceof RemoteFileError && err.retryable;
        if (!transient || attempt >= ATTEMPTS || this.#signal?.aborted) throw err;
        // a body that broke off is dropped: the next request starts again at `offset`
        await this.close();
        this.#leftover = new Uint8Array(0);
        await new Promise((r) => setTimeout(r, RETRY_DELAY_MS * 2 ** (attempt - 1)));
      }
    }
  }

  async #read(offset: number, length: number): Promise<Uint8Array> {
    if (this.#stream) return this.#fromStream(length);
    const res = await this.#get(`bytes=${offset}-${offset + length - 1}`);
    if (res.status === 416) {
      await res.body?.cancel();
      return new Uint8Array(0);
    }
    if (res.status === 206) {
      const range = /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "");
      if (range && Number(range[1]) !== offset) {
        await res.body?.cancel();
        throw new RemoteFileError(
          `${redactUrl(this.#url)} answered a Range request for byte ${offset} with bytes from ${range[1]}`,
          redactUrl(this.#url),
          206,
        );
      }
      const reader = res.body?.getReader();
      if (!reader) return new Uint8Array(0);
      this.#stream = reader;
      try {
        return await this.#fromStream(length);
      } finally {
        this.#stream = undefined;
        this.#leftover = new Uint8Array(0);
        await reader.cancel().catch(() => undefined);
      }
    }
    if (res.status === 200) {
      // the server ignored Range: keep this body and read on from it, skipping what we already have
      const reader = res.body?.getReader();
      if (!reader) return new Uint8Array(0);
      this.#stream = reader;
      let skip = offset;
      while (skip > 0) {
        const chunk = await this.#fromStream(Math.min(skip, 1 << 20));
        if (chunk.length === 0) return chunk;
        skip -= chunk.length;
      }
      return this.#fromStream(length);
    }
    await res.body?.cancel().catch(() => undefined);
    throw httpError(res.status, this.#url);
  }

  async close(): Promise<void> {
    const stream = this.#stream;
    this.#stream = undefined;
    await stream?.cancel().catch(() => undefined);
  }

  /** The next `length` bytes of the open body (fewer at its end). */
  async #fromStream(length: number): Promise<Uint8Array> {
    const out = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      let chunk = this.#leftover;
      if (chunk.length === 0) {
        const next = await (this.#stream as ReadableStreamDefaultReader<Uint8Array>).read().catch((err: unknown) => {
          throw unreachable(this.#url, err);
        });
        if (next.done) break;
        chunk = next.value;
        this.bytesFetched += chunk.length;
      }
      const take = Math.min(chunk.length, length - filled);
      out.set(chunk.subarray(0, take), filled);
      filled += take;
      this.#leftover = chunk.subarray(take);
    }
    return out.subarray(0, filled);
  }

  /** GET with a Range header, following redirects by hand. */
  async #get(range: string): Promise<Response> {
    let url = this.#url;
    let headers = this.#headers;
    for (let hop = 0; ; hop++) {
      const signals = [AbortSignal.timeout(this.#timeoutMs), ...(this.#signal ? [this.#signal] : [])];
      let res: Response;
      try {
        res = await fetch(url, {
          method: "GET",
          headers: { ...headers, range, "accept-encoding": "identity" },
          redirect: "manual",
          signal: AbortSignal.any(signals),
        });
      } catch (err) {
        if (this.#signal?.aborted) throw this.#signal.reason;
        throw unreachable(url, err);
      }
      const location = res.headers.get("location");
      if (!REDIRECTS.has(res.status) || location === null) {
        this.#url = url;
        this.#headers = headers;
        return res;
      }
      await res.body?.cancel().catch(() => undefined);
      if (hop >= MAX_REDIRECTS) {
        throw new RemoteFileError(
          `${redactUrl(this.#url)} redirected more than ${MAX_REDIRECTS} times`,
          redactUrl(url),
          res.status,
        );
      }
      const next = new URL(location, url);
      if (next.origin !== new URL(url).origin) headers = withoutAuthorization(headers);
      url = next.toString();
    }
  }
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== "authorization"));
}

function httpError(status: number, url: string): RemoteFileError {
  const where = redactUrl(url);
  const why =
    status === 401
      ? "the server wants credentials (a token)"
      : status === 403
        ? "access is forbidden"
        : status === 404
          ? "there is no such file"
          : `HTTP ${status}`;
  return new RemoteFileError(`cannot read the GGUF header of ${where}: ${why} (HTTP ${status})`, where, status);
}

function unreachable(url: string, err: unknown): RemoteFileError {
  const where = redactUrl(url);
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  const reason =
    e?.name === "TimeoutError"
      ? "timed out"
      : (e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err)).toString();
  return new RemoteFileError(
    `cannot reach ${new URL(where).origin} to read ${where}: ${reason}`,
    where,
    undefined,
    err,
  );
}
