import type { IncomingMessage, ServerResponse } from "node:http";
import { parseJson, parseOrThrow, RbeeError, ValidationError } from "@rbee/contract";
import type { z } from "zod";
import { jsonDepthExceeds, MAX_JSON_DEPTH } from "./guard.js";
import type { RequestFacts } from "./request-facts.js";
import { SseWriter } from "./sse.js";

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** A body of another type than JSON sent to a route that reads JSON. */
export class UnsupportedMediaTypeError extends RbeeError {
  constructor(given: string) {
    super(
      `this route takes a JSON body: send it with 'Content-Type: application/json' (got ${given === "" ? "no Content-Type" : `'${given.slice(0, 100)}'`})`,
      { statusCode: 415, code: "unsupported_media_type" },
    );
  }
}

/** True for `application/json` and `application/<x>+json`, with any parameters. */
export function isJsonContentType(value: string): boolean {
  const type = (value.split(";")[0] ?? "").trim().toLowerCase();
  return type === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(type);
}

export class PayloadTooLargeError extends RbeeError {
  constructor(limit: number) {
    super(`request body is larger than ${limit} bytes; send a smaller body`, {
      statusCode: 413,
      code: "payload_too_large",
      details: { limit_bytes: limit },
    });
  }
}

/** Everything a route handler sees of one request. */
export class HttpContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly requestId: string;
  readonly startedAt = performance.now();
  params: Record<string, string> = {};
  /** Route name for logs and metrics (the pattern, not the concrete path). */
  route = "unmatched";
  /** Free-form facts a handler wants in the request's log line. */
  readonly logFields: Record<string, unknown> = {};
  /** What middleware learnt about the caller (request-facts.ts). */
  readonly facts: RequestFacts = {};
  #abort = new AbortController();
  #sse: SseWriter | undefined;

  constructor(req: IncomingMessage, res: ServerResponse, requestId: string) {
    this.req = req;
    this.res = res;
    this.requestId = requestId;
    this.url = new URL(req.url ?? "/", "http://localhost");
    res.once("close", () => {
      // a client that went away is not a failure of this daemon: a 499 that is logged as a request, not with a stack
      if (!res.writableFinished)
        this.#abort.abort(new RbeeError("client disconnected", { statusCode: 499, code: "client_closed" }));
    });
  }

  /** Aborted when the client goes away before the response is complete. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get method(): string {
    return this.req.method ?? "GET";
  }

  header(name: string): string | undefined {
    const v = this.req.headers[name.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  }

  /** Reads the whole body as text, refusing more than `limit` bytes with a 413. */
  text(limit = DEFAULT_BODY_LIMIT): Promise<string> {
    const declared = Number(this.req.headers["content-length"] ?? "0");
    if (declared > limit) return Promise.reject(new PayloadTooLargeError(limit));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const req = this.req;
      const onData = (chunk: Buffer) => {
        size += chunk.length;
        if (size > limit) {
          req.off("data", onData);
          req.resume();
          reject(new PayloadTooLargeError(limit));
          return;
        }
        chunks.push(chunk);
      };
      req.on("data", onData);
      req.once("end", () =>
        resolve(chunks.length === 1 ? (chunks[0] as Buffer).toString("utf8") : Buffer.concat(chunks).toString("utf8")),
      );
      // a client that went away mid-body is not a server failure
      req.once("error", () =>
        reject(
          new RbeeError("the client went away before its request body arrived", {
            statusCode: 400,
            code: "client_closed",
          }),
        ),
      );
    });
  }

  /** Reads, parses and validates a JSON body; every failure is a 4xx that says what is wrong. */
  async json<S extends z.ZodType>(schema: S, what = "request body", limit = DEFAULT_BODY_LIMIT): Promise<z.output<S>> {
    return parseOrThrow(schema, await this.jsonObject(what, limit), what);
  }

  /** Reads and parses a JSON object body, not yet validated against a schema (json() does both). */
  async jsonObject(what = "request body", limit = DEFAULT_BODY_LIMIT): Promise<Record<string, unknown>> {
    // a web page can send text/plain (or a form) cross-site without asking first; JSON it cannot.
    // Browsers name the page's Origin on such requests: those must be JSON. Command-line clients send
    // no Origin, and are read as JSON whatever they call it (`curl -d` says form-urlencoded, as in
    // Ollama's and llama.cpp's own examples, which those servers accept)
    const type = this.header("content-type") ?? "";
    const hasBody = Number(this.header("content-length") ?? "0") > 0 || this.header("transfer-encoding") !== undefined;
    const fromBrowser = this.header("origin") !== undefined;
    if (fromBrowser && (type !== "" || hasBody) && !isJsonContentType(type)) throw new UnsupportedMediaTypeError(type);
    const text = await this.text(limit);
    if (text.trim() === "") throw new ValidationError(`${what} is empty; send a JSON object`);
    if (jsonDepthExceeds(text, MAX_JSON_DEPTH))
      throw new ValidationError(
        `${what} is nested more than ${MAX_JSON_DEPTH} levels deep (objects and arrays); the limit is ${MAX_JSON_DEPTH}`,
      );
    const parsed = parseJson(text);
    if (!parsed.ok) throw new ValidationError(`${what} is not valid JSON (${parsed.message}); send a JSON object`);
    if (parsed.value === null || typeof parsed.value !== "object" || Array.isArray(parsed.value)) {
      throw new ValidationError(`${what} must be a JSON object`);
    }
    return parsed.value as Record<string, unknown>;
  }

  /** Sends a JSON response. */
  send(status: number, body: unknown, headers: Record<string, string | number> = {}): void {
    if (this.res.headersSent) return;
    const payload = JSON.stringify(body);
    this.res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(payload),
      ...headers,
    });
    this.res.end(payload);
  }

  /** Sends a plain-text response. */
  sendText(status: number, text: string, contentType = "text/plain; charset=utf-8"): void {
    if (this.res.headersSent) return;
    this.res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
    this.res.end(text);
  }

  /** Starts an SSE response (idempotent; the options of the first call hold). */
  sse(options?: { headers?: Record<string, string>; flushIntervalMs?: number }): SseWriter {
    if (this.#sse === undefined) {
      this.#sse = new SseWriter(this.res, options);
      // HEAD asks for the headers only: the stream ends at once, and a handler waiting for the client
      // to go away (ctx.signal) is let go, rather than holding an endless stream nobody reads
      if (this.method === "HEAD") {
        this.#sse.close();
        this.#abort.abort(new RbeeError("HEAD: the stream's headers only", { statusCode: 200, code: "head" }));
      }
    }
    return this.#sse;
  }

  /** The SSE writer if the response became a stream. */
  get stream(): SseWriter | undefined {
    return this.#sse;
  }
}
