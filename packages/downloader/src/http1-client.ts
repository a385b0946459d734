import { readFileSync } from "node:fs";
import { isIP, connect as netConnect, type Socket } from "node:net";
import { type ConnectionOptions, rootCertificates, connect as tlsConnect } from "node:tls";

/**
 * A small HTTP/1.1 client for large bodies. node:http hands a body over in fresh 64 KiB buffers
 * through a stream, which costs more CPU than the bytes are worth at disk speed; here the socket
 * reads straight into memory the consumer provides (`onread`), so a body goes from the kernel into
 * the buffer that is then written to the file, with no allocation or copy per read.
 *
 * Scope: GET and HEAD, `Content-Length`, chunked and close-delimited bodies, 1xx skipped,
 * keep-alive reuse per origin, http and https (ALPN http/1.1). No request bodies, no proxies.
 */

/** Where a response body goes. Reads land in `region()`; what lands elsewhere is handed to `copy`. */
export interface BodySink {
  /** Memory for the next socket read, or undefined when the sink is full (the read is then copied in later). */
  region(): Buffer | undefined;
  /** The first `n` bytes of the last region were filled. False pauses reading until `resume()`. */
  filled(n: number): boolean;
  /** Body bytes that landed elsewhere; the sink must take them all. False pauses reading until `resume()`. */
  copy(bytes: Buffer): boolean;
}

/** The connection closed before the response was complete. */
export class PrematureCloseError extends Error {
  readonly code = "ERR_STREAM_PREMATURE_CLOSE";
}

/** No bytes arrived for the stall timeout. */
export class StallError extends Error {
  readonly code = "ETIMEDOUT";
}

/** The server sent something that is not HTTP/1.1. */
export class HttpProtocolError extends Error {
  readonly code = "EPROTO";
}

export interface Http1RequestOptions {
  method?: "GET" | "HEAD";
  /** Header names in any case; values must not contain CR or LF. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Fail with StallError when no bytes arrive for this long (connecting, waiting, or mid-body). */
  stallTimeoutMs: number;
}

const USER_AGENT = "rbee-downloader/0.1";
const SCRATCH_BYTES = 64 * 1024;
const MAX_HEADER_BYTES = 64 * 1024;
const IDLE_KEEP_MS = 4000;
const HTTP_PREFIX = Buffer.from("HTTP/");
const MAX_IDLE_PER_ORIGIN = 4;

type Framing =
  | { kind: "none" }
  | { kind: "length"; remaining: number }
  | { kind: "close" }
  | { kind: "chunked"; decoder: ChunkedDecoder };

const idle = new Map<string, Connection[]>();

let extraCa: { file: string; cas: string[] } | undefined;

/** Certificate errors that mean "signed by a CA this process does not trust". */
const UNTRUSTED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
]);

/** An untrusted certificate's error, with what to do: a cluster's private CA goes in RBEE_TLS_CA. */
function untrustedHint(err: Error): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === undefined || !UNTRUSTED.has(code)) return err;
  err.message = `${err.message} (the server's certificate is signed by a CA this machine does not trust; for a private CA of the cluster, set RBEE_TLS_CA to its PEM file)`;
  return err;
}

/**
 * The default CAs plus the one RBEE_TLS_CA names (a private CA of the cluster's hives, which share
 * models over https), or undefined (Node's defaults) when it is unset. Read once per file name.
 */
function trustedCas(): string[] | undefined {
  const file = process.env.RBEE_TLS_CA;
  if (!file) return undefined;
  if (extraCa?.file !== file) {
    let pem: string;
    try {
      pem = readFileSync(file, "utf8");
    } catch (err) {
      throw new Error(`cannot read the CA certificate RBEE_TLS_CA=${file}: ${(err as Error).message}`);
    }
    extraCa = { file, cas: [...rootCertificates, pem] };
  }
  return extraCa.cas;
}

/** One TCP (or TLS) connection; it serves one exchange at a time and may be reused. */
class Connection {
  readonly socket: Socket;
  readonly origin: string;
  exchange: Exchange | undefined;
  dead = false;
  #scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  #handed: Buffer | undefined;
  #handedBySink = false;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(url: URL) {
    this.origin = url.origin;
    const https = url.protocol === "https:";
    const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
    const port = Number(url.port) || (https ? 443 : 80);
    const onread = { buffer: () => this.#nextBuffer(), callback: (n: number, buf: Buffer) => this.#onRead(n, buf) };
    // tls.connect takes `onread` as net.connect does (Node ≥ 12); @types/node only lists it for net
    const tlsOptions = {
      host,
      port,
      servername: isIP(host) ? undefined : host,
      ALPNProtocols: ["http/1.1"],
      onread,
      ca: trustedCas(),
    };
    this.socket = https ? tlsConnect(tlsOptions as ConnectionOptions) : netConnect({ host, port, onread });
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, 30_000);
    this.socket.on("error", (err) => this.#end(untrustedHint(err)));
    this.socket.on("end", () => this.#end(undefined));
    this.socket.on("close", () => this.#end(undefined));
  }

  /** Parks the connection for reuse. */
  release(): void {
    this.exchange = undefined;
    if (this.dead) return;
    const list = idle.get(this.origin) ?? [];
    if (list.length >= MAX_IDLE_PER_ORIGIN) {
      this.destroy();
      return;
    }
    list.push(this);
    idle.set(this.origin, list);
    // keep reading while idle (an exchange may have ended paused), so a close by the server is seen
    this.socket.resume();
    this.socket.unref();
    this.#idleTimer = setTimeout(() => this.destroy(), IDLE_KEEP_MS);
    this.#idleTimer.unref();
  }

  /** Takes the connection out of the idle list for a new exchange. */
  adopt(ex: Exchange): void {
    clearTimeout(this.#idleTimer);
    this.socket.ref();
    this.exchange = ex;
  }

  destroy(err?: Error): void {
    this.dead = true;
    clearTimeout(this.#idleTimer);
    removeIdle(this);
    this.socket.destroy(err);
  }

  #nextBuffer(): Buffer {
    const region = this.exchange?.sinkRegion();
    this.#handedBySink = region !== undefined;
    this.#handed = region ?? this.#scratch;
    return this.#handed;
  }

  #onRead(n: number, buf: Buffer): boolean {
    const ex = this.exchange;
    if (!ex) {
      // bytes on an idle connection: the server is not speaking HTTP/1.1 as we do; drop it
      this.destroy();
      return false;
    }
    const inPlace = this.#handedBySink && buf === this.#handed;
    return ex.onBytes(buf, n, inPlace);
  }

  #end(err: Error | undefined): void {
    const wasDead = this.dead;
    this.dead = true;
    clearTimeout(this.#idleTimer);
    removeIdle(this);
    this.exchange?.onClose(err);
    if (!wasDead && err) this.socket.destroy();
  }
}

function removeIdle(c: Connection): void {
  const list = idle.get(c.origin);
  if (!list) return;
  const i = list.indexOf(c);
  if (i >= 0) list.splice(i, 1);
  if (list.length === 0) idle.delete(c.origin);
}

function takeIdle(origin: string): Connection | undefined {
  const list = idle.get(origin);
  while (list && list.length > 0) {
    const c = list.pop()!;
    if (!c.dead && !c.socket.destroyed) return c;
  }
  return undefined;
}

/** A response whose headers arrived; its body is read with pipeTo or text, or dropped with close. */
export class Http1Response {
  readonly status: number;
  /** Lower-case names; repeated headers joined with ", ". */
  readonly headers: Readonly<Record<string, string>>;
  readonly url: string;
  /** The announced body length (Content-Length), or null when chunked or delimited by the close. */
  readonly contentLength: number | null;
  readonly #ex: Exchange;

  constructor(ex: Exchange, status: number, headers: Record<string, string>, contentLength: number | null) {
    this.#ex = ex;
    this.status = status;
    this.headers = headers;
    this.url = ex.url.href;
    this.contentLength = contentLength;
  }

  /** Streams the body into `sink`; resolves once all of it was handed over. */
  pipeTo(sink: BodySink): Promise<void> {
    return this.#ex.attach(sink);
  }

  /** Starts reading again after the sink returned false. */
  resume(): void {
    this.#ex.resume();
  }

  /** The body as text, cut at `limit` bytes (for error messages and small documents). */
  async text(limit = 64 * 1024): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    const sink: BodySink = {
      region: () => undefined,
      filled: () => true,
      copy: (bytes) => {
        if (size < limit) chunks.push(Buffer.from(bytes.subarray(0, limit - size)));
        size += bytes.length;
        return true;
      },
    };
    try {
      await this.#ex.attach(sink);
    } catch (err) {
      if (chunks.length === 0) throw err;
    }
    return Buffer.concat(chunks).toString("utf8");
  }

  /** Drops the rest of the body (the connection is closed unless the body had already ended). */
  close(err?: Error): void {
    this.#ex.abandon(err);
  }
}

/** One request and its response on a connection. */
class Exchange {
  readonly url: URL;
  readonly conn: Connection;
  readonly #method: string;
  readonly #stallMs: number;
  #state: "head" | "body" | "done" = "head";
  #head: Buffer[] = [];
  #headBytes = 0;
  #framing: Framing = { kind: "none" };
  #reusable = true;
  #sink: BodySink | undefined;
  #pending: Buffer | undefined;
  #paused = false;
  #gotBytes = false;
  #timer: NodeJS.Timeout;
  #headDone!: { resolve: (r: Http1Response) => void; reject: (e: unknown) => void };
  #bodyDone: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  #bodyError: unknown;
  readonly headPromise: Promise<Http1Response>;
  #onAbort: (() => void) | undefined;
  #signal: AbortSignal | undefined;

  constructor(url: URL, conn: Connection, o: Http1RequestOptions) {
    this.url = url;
    this.conn = conn;
    this.#method = o.method ?? "GET";
    this.#stallMs = o.stallTimeoutMs;
    this.headPromise = new Promise((resolve, reject) => {
      this.#headDone = { resolve, reject };
    });
    this.#timer = setTimeout(() => {
      // a pause is ours (the consumer is busy), not the server's
      if (this.#paused) this.#timer.refresh();
      else this.#fail(new StallError(`no bytes from ${url.host} for ${this.#stallMs} ms`));
    }, this.#stallMs);
    this.#signal = o.signal;
    if (o.signal) {
      this.#onAbort = () => this.#fail(o.signal?.reason);
      o.signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /** Whether the exchange failed before the server sent anything (a reused connection may have gone stale). */
  get silent(): boolean {
    return !this.#gotBytes;
  }

  sinkRegion(): Buffer | undefined {
    if (this.#state !== "body" || !this.#sink || this.#paused) return undefined;
    const f = this.#framing;
    if (f.kind !== "length" && f.kind !== "close") return undefined;
    const region = this.#sink.region();
    if (region && f.kind === "length" && region.length > f.remaining) return region.subarray(0, f.remaining);
    return region;
  }

  onBytes(buf: Buffer, n: number, inPlace: boolean): boolean {
    this.#gotBytes = true;
    this.#timer.refresh();
    try {
      if (this.#state === "head") return this.#onHeadBytes(Buffer.from(buf.subarray(0, n)));
      if (this.#state === "body") return this.#deliver(buf.subarray(0, n), inPlace);
      // bytes after the response: not a connection to reuse
      this.#reusable = false;
      this.conn.destroy();
      return false;
    } catch (err) {
      this.#fail(err);
      return false;
    }
  }

  onClose(err: Error | undefined): void {
    if (this.#state === "done") return;
    if (!err && this.#state === "body" && this.#framing.kind === "close") {
      this.#reusable = false;
      this.#finish();
      return;
    }
    const what = this.#state === "head" ? "before the response headers" : "in the middle of the body";
    this.#fail(err ?? new PrematureCloseError(`${this.url.host} closed the connection ${what}`));
  }

  attach(sink: BodySink): Promise<void> {
    if (this.#bodyDone) throw new Error("the body is already being read");
    let done!: { resolve: () => void; reject: (e: unknown) => void };
    const p = new Promise<void>((resolve, reject) => {
      done = { resolve, reject };
    });
    this.#bodyDone = done;
    if (this.#bodyError !== undefined) {
      done.reject(this.#bodyError);
      return p;
    }
    this.#sink = sink;
    const pending = this.#pending;
    this.#pending = undefined;
    let more = true;
    if (pending && pending.length > 0) more = this.#deliver(pending, false);
    if (this.#isDone()) done.resolve();
    else if (more) this.resume();
    return p;
  }

  resume(): void {
    if (this.#state !== "body" || !this.#sink) return;
    this.#paused = false;
    this.#timer.refresh();
    this.conn.socket.resume();
  }

  abandon(err?: Error): void {
    if (this.#state === "done") return;
    this.#fail(err ?? new Error("the response body was abandoned"));
  }

  #isDone(): boolean {
    return this.#state === "done";
  }

  #pause(): false {
    this.#paused = true;
    return false;
  }

  #onHeadBytes(bytes: Buffer): boolean {
    this.#head.push(bytes);
    this.#headBytes += bytes.length;
    for (;;) {
      const all = this.#head.length === 1 ? this.#head[0]! : Buffer.concat(this.#head);
      this.#head = [all];
      const end = all.indexOf("\r\n\r\n");
      const firstLine = all.indexOf("\n");
      if (firstLine >= 0 && !all.subarray(0, 5).equals(HTTP_PREFIX)) {
        const line = all.subarray(0, firstLine).toString("latin1").trim().slice(0, 80);
        throw new HttpProtocolError(`${this.url.host} did not answer with HTTP/1.x: ${JSON.stringify(line)}`);
      }
      if (end < 0) {
        if (this.#headBytes > MAX_HEADER_BYTES)
          throw new HttpProtocolError(`${this.url.host} sent more than ${MAX_HEADER_BYTES} bytes of headers`);
        return true;
      }
      const rest = all.subarray(end + 4);
      const { status, headers } = parseHead(all.subarray(0, end).toString("latin1"), this.url.host);
      if (status >= 100 && status < 200 && status !== 101) {
        // an interim response (100 Continue, 103 Early Hints): the real one follows
        this.#head = rest.length > 0 ? [rest] : [];
        this.#headBytes = rest.length;
        if (rest.length === 0) return true;
        continue;
      }
      this.#head = [];
      this.#state = "body";
      this.#framing = framingOf(this.#method, status, headers, this.url.host);
      if ((headers.connection ?? "").toLowerCase().includes("close")) this.#reusable = false;
      const length = this.#framing.kind === "length" ? this.#framing.remaining : null;
      const response = new Http1Response(this, status, headers, length);
      this.#pending = rest.length > 0 ? rest : undefined;
      if (this.#framing.kind === "none" || (this.#framing.kind === "length" && this.#framing.remaining === 0)) {
        if (rest.length > 0) this.#reusable = false;
        this.#finish();
      }
      this.#headDone.resolve(response);
      // done: the connection reads on (idle, to notice a close) or is gone; else wait for a consumer
      return this.#isDone() ? true : this.#pause();
    }
  }

  /** Hands body bytes to the sink; returns false to pause reading. */
  #deliver(bytes: Buffer, inPlace: boolean): boolean {
    const sink = this.#sink;
    if (!sink) {
      // no consumer yet: keep them (only possible right after the headers)
      this.#pending = this.#pending ? Buffer.concat([this.#pending, bytes]) : Buffer.from(bytes);
      return this.#pause();
    }
    const f = this.#framing;
    let more = true;
    if (f.kind === "length") {
      let take = bytes;
      if (bytes.length > f.remaining) {
        this.#reusable = false;
        take = bytes.subarray(0, f.remaining);
      }
      f.remaining -= take.length;
      if (take.length > 0) more = inPlace && take === bytes ? sink.filled(take.length) : sink.copy(take);
      if (f.remaining === 0) this.#finish();
    } else if (f.kind === "close") {
      more = inPlace ? sink.filled(bytes.length) : sink.copy(bytes);
    } else if (f.kind === "chunked") {
      const ended = f.decoder.push(bytes, (piece) => {
        if (!sink.copy(piece)) more = false;
      });
      if (ended) this.#finish();
    } else {
      this.#reusable = false;
    }
    // done: returning false here would stop the reads of a connection that was just released for reuse
    if (this.#state === "done") return true;
    return more ? true : this.#pause();
  }

  #finish(): void {
    if (this.#state === "done") return;
    this.#state = "done";
    this.#cleanup();
    if (this.#reusable && !this.conn.dead) this.conn.release();
    else this.conn.destroy();
    this.#bodyDone?.resolve();
  }

  #fail(err: unknown): void {
    if (this.#state === "done") return;
    const wasHead = this.#state === "head";
    this.#state = "done";
    this.#cleanup();
    this.conn.destroy();
    if (wasHead) this.#headDone.reject(err);
    else {
      this.#bodyError = err;
      this.#bodyDone?.reject(err);
    }
  }

  #cleanup(): void {
    clearTimeout(this.#timer);
    if (this.#onAbort) this.#signal?.removeEventListener("abort", this.#onAbort);
  }
}

function parseHead(text: string, host: string): { status: number; headers: Record<string, string> } {
  const lines = text.split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? "");
  if (!m)
    throw new HttpProtocolError(
      `${host} did not answer with HTTP/1.x: ${JSON.stringify((lines[0] ?? "").slice(0, 80))}`,
    );
  const headers: Record<string, string> = {};
  let last: string | undefined;
  for (const line of lines.slice(1)) {
    if ((line.startsWith(" ") || line.startsWith("\t")) && last) {
      headers[last] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(":");
    if (colon <= 0)
      throw new HttpProtocolError(`${host} sent a malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    last = name;
  }
  return { status: Number(m[1]), headers };
}

function framingOf(method: string, status: number, headers: Record<string, string>, host: string): Framing {
  if (method === "HEAD" || status === 204 || status === 304) return { kind: "none" };
  const te = headers["transfer-encoding"];
  if (te !== undefined) {
    if (!/(^|,)\s*chunked\s*$/i.test(te))
      throw new HttpProtocolError(`${host} sent an unsupported Transfer-Encoding: ${te}`);
    return { kind: "chunked", decoder: new ChunkedDecoder(host) };
  }
  const cl = headers["content-length"];
  if (cl !== undefined) {
    const first = cl.split(",")[0]!.trim();
    if (!/^\d+$/.test(first)) throw new HttpProtocolError(`${host} sent a malformed Content-Length: ${cl}`);
    return { kind: "length", remaining: Number(first) };
  }
  return { kind: "close" };
}

/** Decodes `Transfer-Encoding: chunked` (RFC 9112 §7.1), trailers ignored. */
class ChunkedDecoder {
  #state: "size" | "data" | "data-crlf" | "trailer" = "size";
  #line = "";
  #left = 0;
  constructor(readonly host: string) {}

  /** Feeds bytes; `out` receives the data; returns true once the last chunk and the trailers were read. */
  push(bytes: Buffer, out: (piece: Buffer) => void): boolean {
    let i = 0;
    while (i < bytes.length) {
      if (this.#state === "data") {
        const n = Math.min(this.#left, bytes.length - i);
        out(bytes.subarray(i, i + n));
        i += n;
        this.#left -= n;
        if (this.#left === 0) this.#state = "data-crlf";
        continue;
      }
      const nl = bytes.indexOf(10, i);
      const end = nl < 0 ? bytes.length : nl;
      this.#line += bytes.toString("latin1", i, end);
      if (this.#line.length > 4096) throw new HttpProtocolError(`${this.host} sent a malformed chunked body`);
      i = end;
      if (nl < 0) break;
      i = nl + 1;
      const line = this.#line.replace(/\r$/, "");
      this.#line = "";
      if (this.#state === "data-crlf") {
        if (line !== "") throw new HttpProtocolError(`${this.host} sent a malformed chunked body`);
        this.#state = "size";
      } else if (this.#state === "size") {
        const size = Number.parseInt(line.split(";")[0]!.trim(), 16);
        if (!Number.isFinite(size) || size < 0) throw new HttpProtocolError(`${this.host} sent a bad chunk size`);
        if (size === 0) this.#state = "trailer";
        else {
          this.#left = size;
          this.#state = "data";
        }
      } else if (line === "") {
        return true;
      }
    }
    return false;
  }
}

function requestHead(url: URL, method: string, headers: Record<string, string>): string {
  const lines = [`${method} ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
  const merged: Record<string, string> = {
    "user-agent": USER_AGENT,
    accept: "*/*",
    // the bytes as stored: a compressed body would have another length and break ranges
    "accept-encoding": "identity",
  };
  for (const [k, v] of Object.entries(headers)) merged[k.toLowerCase()] = v;
  for (const [k, v] of Object.entries(merged)) {
    if (["host", "connection", "content-length", "transfer-encoding"].includes(k)) continue;
    if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) throw new TypeError(`header ${k} contains a line break`);
    lines.push(`${k}: ${v}`);
  }
  lines.push("connection: keep-alive", "", "");
  return lines.join("\r\n");
}

/**
 * Sends a GET or HEAD and resolves once the response headers arrived. A connection kept alive from
 * an earlier request to the same origin is reused; if it turns out to be stale (closed before any
 * byte came back), the request goes again on a new connection.
 */
export async function http1Request(url: URL, o: Http1RequestOptions): Promise<Http1Response> {
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new TypeError(`unsupported URL scheme: ${url.protocol}`);
  if (o.signal?.aborted) throw o.signal.reason;
  const head = requestHead(url, o.method ?? "GET", o.headers ?? {});
  const reused = takeIdle(url.origin);
  if (reused) {
    const ex = new Exchange(url, reused, o);
    reused.adopt(ex);
    reused.socket.write(head);
    try {
      return await ex.headPromise;
    } catch (err) {
      if (!ex.silent || o.signal?.aborted) throw err;
    }
  }
  const conn = new Connection(url);
  const ex = new Exchange(url, conn, o);
  conn.adopt(ex);
  conn.socket.write(head);
  return ex.headPromise;
}
