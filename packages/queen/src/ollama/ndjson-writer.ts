import type { ServerResponse } from "node:http";

/**
 * Newline-delimited JSON, as Ollama streams: one object a line, `application/x-ndjson`. Like the SSE
 * writer, `send` waits for `drain` when the socket is full (backpressure reaches the worker) and
 * resolves false once the client is gone; it never throws on a closed connection.
 */
export class NdjsonWriter {
  #res: ServerResponse;

  constructor(res: ServerResponse) {
    this.#res = res;
    res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-cache, no-transform" });
  }

  get closed(): boolean {
    return this.#res.destroyed || this.#res.writableEnded;
  }

  send(value: unknown): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const res = this.#res;
    if (res.write(`${JSON.stringify(value)}\n`)) return Promise.resolve(true);
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

  /** Ends the stream. Idempotent. */
  end(): void {
    if (!this.closed) this.#res.end();
  }
}
