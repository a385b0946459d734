import type { ServerResponse } from "node:http";
import { whenDrained } from "@rbee/server-kit";

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
    return this.write(value) ?? Promise.resolve(!this.closed);
  }

  /** As `send`, but undefined when the line is written at once: no Promise for each token. */
  write(value: unknown): Promise<boolean> | undefined {
    if (this.closed) return undefined;
    return this.#res.write(`${JSON.stringify(value)}\n`) ? undefined : whenDrained(this.#res);
  }

  /** Ends the stream. Idempotent. */
  end(): void {
    if (!this.closed) this.#res.end();
  }
}
