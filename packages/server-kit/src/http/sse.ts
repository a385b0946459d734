import type { ServerResponse } from "node:http";

/**
 * The one Server-Sent Events writer every rbee daemon uses.
 *
 * - writes `text/event-stream` with `no-cache` and disables proxy buffering;
 * - splits multi-line data into several `data:` lines, and refuses newlines in `event` and `id`;
 * - honours backpressure: `send` resolves when the socket has taken the frame (after `drain` if needed);
 * - coalesces writes: with `flushIntervalMs` 0 the frames of one tick go out together (Node corks
 *   the socket until the next tick); with more, a stream is written at most once per interval: a frame after a quiet spell
 *   goes out at once, and the frames that follow within the interval go out together when it ends.
 *   Token streams use a few milliseconds: on these VMs one socket write to loopback costs 100-250 µs
 *   of CPU (the kernel does the receiver's TCP work too), which is a token's worth on a small model,
 *   while a few milliseconds of grouping is invisible to a reader (see docs/llm-worker.md);
 * - never throws on a closed connection: `send` resolves `false` and `closed` turns true.
 */
/** What #write answers for a frame written without backpressure (one Promise for all of them). */
const WRITTEN: Promise<boolean> = Promise.resolve(true);

export class SseWriter {
  #res: ServerResponse;
  #closed = false;
  #corked = false;
  #flushIntervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #lastFlush = Number.NEGATIVE_INFINITY;
  #uncork = () => {
    if (!this.#corked) return;
    this.#corked = false;
    this.#res.uncork();
  };
  #flushWindow = () => {
    this.#timer = undefined;
    this.#lastFlush = performance.now();
    this.#uncork();
  };

  constructor(res: ServerResponse, options: { headers?: Record<string, string>; flushIntervalMs?: number } = {}) {
    this.#res = res;
    this.#flushIntervalMs = options.flushIntervalMs ?? 0;
    const headers = options.headers ?? {};
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      "x-accel-buffering": "no",
      ...headers,
    });
    // no flushHeaders(): the headers leave with the first frame, one write instead of two
    res.once("close", () => {
      this.#closed = true;
    });
  }

  get closed(): boolean {
    return this.#closed || this.#res.destroyed || this.#res.writableEnded;
  }

  /**
   * Sends one event. `data` that is not a string is JSON-encoded.
   * Resolves true once written, false if the connection is gone.
   */
  send(event: string | undefined, data: unknown, id?: string | number): Promise<boolean> {
    return this.#write(formatSseFrame(event, data, id));
  }

  /**
   * Sends one event without making a Promise when it need not: undefined once it is written (or the
   * connection is gone), or, when the client is slower than the stream (backpressure), a Promise
   * that settles once it has taken what was sent. For the hot path of a stream, one event a token.
   */
  write(event: string | undefined, data: unknown): Promise<boolean> | undefined {
    if (this.closed) return undefined;
    const pending = this.#write(formatSseFrame(event, data));
    return pending === WRITTEN ? undefined : pending;
  }

  /** Sends a comment line (ignored by clients); useful as a keep-alive. */
  comment(text = ""): Promise<boolean> {
    return this.#write(`: ${text.replace(/[\r\n]+/g, " ")}\n\n`);
  }

  /** Ends the stream. Idempotent. */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#closed) return;
    this.#closed = true;
    if (!this.#res.writableEnded) this.#res.end();
  }

  #write(frame: string): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const res = this.#res;
    if (this.#flushIntervalMs > 0) {
      if (this.#timer === undefined && performance.now() - this.#lastFlush >= this.#flushIntervalMs) {
        // after a quiet spell a frame goes out at once (Node itself holds it only until the next
        // tick, so corking here would hold it too); frames that follow within the interval wait
        this.#lastFlush = performance.now();
      } else {
        if (!this.#corked) {
          this.#corked = true;
          res.cork();
        }
        if (this.#timer === undefined) {
          const wait = Math.max(0, this.#lastFlush + this.#flushIntervalMs - performance.now());
          this.#timer = setTimeout(this.#flushWindow, wait);
        }
      }
    }
    // with no interval, Node's own corking (until the next tick) joins the frames of one tick
    if (res.write(frame)) return WRITTEN;
    return this.#drained();
  }

  #drained(): Promise<boolean> {
    return whenDrained(this.#res);
  }
}

/**
 * Resolves true once a response that refused a write (backpressure) has drained, or false when its
 * connection closes first.
 */
export function whenDrained(res: ServerResponse): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off("drain", onDrain);
      res.off("close", onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.on("drain", onDrain);
    res.on("close", onClose);
  });
}

/** Formats one SSE frame. Throws on a newline in `event` or `id`, which would corrupt the stream. */
export function formatSseFrame(event: string | undefined, data: unknown, id?: string | number): string {
  let frame = "";
  if (id !== undefined) {
    const idText = String(id);
    if (/[\r\n]/.test(idText)) throw new Error(`SSE id must not contain a newline: ${JSON.stringify(idText)}`);
    frame += `id: ${idText}\n`;
  }
  if (event !== undefined) {
    if (/[\r\n]/.test(event)) throw new Error(`SSE event name must not contain a newline: ${JSON.stringify(event)}`);
    frame += `event: ${event}\n`;
  }
  // JSON never holds a raw line break (JSON.stringify escapes them): only a string may need splitting
  if (typeof data !== "string") return `${frame}data: ${JSON.stringify(data)}\n\n`;
  const text = data;
  if (text.includes("\n") || text.includes("\r")) {
    for (const line of text.split(/\r\n|\r|\n/)) frame += `data: ${line}\n`;
  } else {
    frame += `data: ${text}\n`;
  }
  return `${frame}\n`;
}
