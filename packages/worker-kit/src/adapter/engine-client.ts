import type { IncomingMessage } from "node:http";
import { parseJson, RbeeError, type SseMessage } from "@rbee/contract";
import { readBody, sendRequest, UnreachableError } from "@rbee/server-kit";
import { NDJSON_FORMAT, readEngineStream, SSE_FORMAT, type StreamItemHandler } from "./engine-stream.js";

/** An error reply from an engine, read leniently: engines do not share rbee's error shape. */
export interface EngineErrorReply {
  status: number;
  /** The engine's own message when it sent one, else the start of its body. */
  message: string;
  /** The engine's error type or code, when it gave one as a string. */
  type?: string;
  body: unknown;
}

/** Reads an engine's error body: `{"error": {"message", "type"|"code"}}`, `{"error": "..."}`, `{"message"}` or text. */
export function readEngineError(status: number, text: string): EngineErrorReply {
  const parsed = parseJson(text);
  if (parsed.ok && typeof parsed.value === "object" && parsed.value !== null) {
    const body = parsed.value as Record<string, unknown>;
    const err = body.error ?? body.detail;
    if (typeof err === "string") return { status, message: err, body };
    if (typeof err === "object" && err !== null) {
      const e = err as Record<string, unknown>;
      const message = typeof e.message === "string" ? e.message : JSON.stringify(e).slice(0, 300);
      const type = typeof e.type === "string" ? e.type : typeof e.code === "string" ? e.code : undefined;
      return { status, message, type, body };
    }
    if (typeof body.message === "string") return { status, message: body.message, body };
  }
  return { status, message: text.trim().slice(0, 300) || `HTTP ${status}`, body: text };
}

/** An engine answered with an error status. */
export class EngineHttpError extends Error {
  constructor(
    readonly reply: EngineErrorReply,
    readonly path: string,
  ) {
    super(`the engine answered ${path} with HTTP ${reply.status}: ${reply.message}`);
  }
}

/**
 * Talks to an engine on loopback through server-kit's one HTTP client. Replies are parsed leniently:
 * one malformed reply or SSE chunk becomes an RbeeError (502), never a crash.
 */
export class EngineClient {
  /**
   * `token`: sent as `Authorization: Bearer` on every request (an engine started with an API key of
   * its own, so that other local processes cannot use it behind the worker's back).
   */
  constructor(
    readonly baseUrl: string,
    readonly name: string,
    readonly token?: string,
  ) {}

  url(path: string): string {
    return new URL(path, this.baseUrl).toString();
  }

  async #send(
    path: string,
    o: { body?: unknown; signal?: AbortSignal; timeoutMs?: number; headers?: Record<string, string> },
  ): Promise<IncomingMessage> {
    try {
      return await sendRequest(this.url(path), {
        method: o.body === undefined ? "GET" : "POST",
        body: o.body,
        headers: o.headers,
        token: this.token,
        signal: o.signal,
        timeoutMs: o.timeoutMs,
        what: this.name,
      });
    } catch (err) {
      if (o.signal?.aborted) throw err;
      if (err instanceof UnreachableError) {
        throw new RbeeError(`${this.name} does not answer: ${err.message}`, {
          statusCode: 503,
          code: "engine_unreachable",
          retryable: true,
          cause: err,
        });
      }
      throw err;
    }
  }

  /** GET or POST (when `body` is given) a JSON endpoint; an error status throws EngineHttpError. */
  async json(path: string, o: { body?: unknown; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<unknown> {
    const res = await this.#send(path, o);
    const text = await readBody(res);
    const status = res.statusCode ?? 500;
    if (status >= 400) throw new EngineHttpError(readEngineError(status, text), path);
    const parsed = parseJson(text);
    if (!parsed.ok) {
      throw new RbeeError(`${this.name} sent a reply to ${path} that is not JSON: ${text.slice(0, 120)}`, {
        statusCode: 502,
        code: "bad_gateway",
      });
    }
    return parsed.value;
  }

  /** GET a binary endpoint (an image file), with its content type. */
  async bytes(
    path: string,
    o: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<{ data: Buffer; contentType: string | undefined }> {
    const res = await this.#send(path, o);
    const status = res.statusCode ?? 500;
    if (status >= 400) throw new EngineHttpError(readEngineError(status, await readBody(res)), path);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return { data: Buffer.concat(chunks), contentType: res.headers["content-type"] };
  }

  /** GET a text endpoint (e.g. Prometheus /metrics). */
  async text(path: string, o: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<string> {
    const res = await this.#send(path, o);
    const text = await readBody(res);
    const status = res.statusCode ?? 500;
    if (status >= 400) throw new EngineHttpError(readEngineError(status, text), path);
    return text;
  }

  /**
   * POSTs `body` and hands each SSE event of the reply to `onEvent` as it arrives (see
   * readEngineStream: backpressure, "stop", errors). An error status throws EngineHttpError.
   * Aborting `signal` closes the connection (so the engine learns that the client went away) and
   * resolves.
   */
  async stream(
    path: string,
    body: unknown,
    o: { signal?: AbortSignal },
    onEvent: StreamItemHandler<SseMessage>,
  ): Promise<void> {
    const res = await this.#streamed(path, body, o.signal);
    await readEngineStream(res, SSE_FORMAT, { name: this.name, signal: o.signal }, onEvent);
  }

  /**
   * POSTs `body` to an NDJSON endpoint (Ollama's `/api/generate`, `/api/chat`, `/api/pull`) and
   * hands each line, parsed, to `onLine`, as {@link stream} does with events. A line that is not a
   * JSON object is an RbeeError (`engine_stream_broken`). Aborting `signal`, even before the reply
   * comes, resolves.
   */
  async streamNdjson(
    path: string,
    body: unknown,
    o: { signal?: AbortSignal },
    onLine: StreamItemHandler<Record<string, unknown>>,
  ): Promise<void> {
    let res: IncomingMessage;
    try {
      res = await this.#streamed(path, body, o.signal, { accept: "application/x-ndjson" });
    } catch (err) {
      if (o.signal?.aborted) return;
      throw err;
    }
    await readEngineStream(res, NDJSON_FORMAT, { name: this.name, signal: o.signal }, onLine);
  }

  /** POSTs a streamed request; an error status throws EngineHttpError. */
  async #streamed(
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
    headers?: Record<string, string>,
  ): Promise<IncomingMessage> {
    const res = await this.#send(path, { body, signal, headers });
    const status = res.statusCode ?? 500;
    if (status >= 400) {
      const text = await readBody(res).catch(() => "");
      throw new EngineHttpError(readEngineError(status, text), path);
    }
    return res;
  }
}
