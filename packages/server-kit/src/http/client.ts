import { type Agent, Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import type { ParseResult, SseMessage } from "@rbee/contract";
import { parseJson, parseSse, RbeeError, readErrorBody } from "@rbee/contract/light";
import type { z } from "zod";
import { describeTlsFailure, extraCa } from "./tls-config.js";

const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 256 });

/** A peer that could not be reached at all (refused, reset, timed out, no route). */
export class UnreachableError extends RbeeError {
  constructor(
    readonly url: string,
    reason: string,
    what = "the server",
    /** It accepted the connection (or was being reached) but sent nothing in time: up, but frozen or overloaded. */
    readonly timedOut = false,
  ) {
    super(`cannot reach ${what} at ${url}: ${reason}`, {
      statusCode: 503,
      code: "unreachable",
      retryable: true,
      details: { url },
    });
  }
}

/** A peer that answered with an error status; carries its error body when it sent one. */
export class HttpStatusError extends RbeeError {
  constructor(
    readonly status: number,
    message: string,
    code: string,
    readonly body: unknown,
    retryAfterSeconds?: number,
    param?: string | null,
  ) {
    super(message, { statusCode: status, code, retryAfterSeconds, param });
  }
}

export interface ClientRequestOptions {
  method?: string;
  /** JSON-encoded unless it is a string. */
  body?: unknown;
  token?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /**
   * Gives up (UnreachableError) when no byte of the response arrived in time: neither its headers
   * nor an interim `102 Processing` (which rbee workers send as soon as they accept a request).
   */
  timeoutMs?: number;
  /** For streams (streamSse): give up when no byte arrived for this long (keep-alive comments count). */
  idleTimeoutMs?: number;
  /** Names the peer in error messages: "the queen", "hive gpu-box". */
  what?: string;
  /**
   * For https:// URLs: a CA certificate (PEM) trusted besides the default ones. Default: the file
   * RBEE_TLS_CA names, if set.
   */
  ca?: string;
}

function describeNetworkError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "ECONNREFUSED":
      return "connection refused (is it running?)";
    case "ECONNRESET":
      return "the connection was reset";
    case "ETIMEDOUT":
      return "timed out";
    case "ENOTFOUND":
      return "unknown host";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "no route to the host";
    default:
      return err.message;
  }
}

function formatMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}

type RequestFn = typeof httpRequest;

/**
 * node:https with rbee's agents (tls.ts, which loads node:tls and node:crypto), imported for the
 * first https:// URL: a client of plain HTTP daemons (the CLI on the queen's machine) starts without.
 */
let httpsClient: Promise<{ request: RequestFn; agentFor: (ca: string | undefined) => Agent }> | undefined;

function loadHttpsClient() {
  if (httpsClient === undefined) {
    httpsClient = Promise.all([import("node:https"), import("./tls.js")]).then(([https, tls]) => ({
      request: https.request,
      agentFor: tls.httpsAgentFor,
    }));
  }
  return httpsClient;
}

/** Sends a request and resolves the response once its headers arrived. */
export function sendRequest(url: string, o: ClientRequestOptions = {}): Promise<IncomingMessage> {
  const target = new URL(url);
  if (target.protocol !== "https:") return send(httpRequest, httpAgent, target, url, o);
  return loadHttpsClient().then((https) => send(https.request, https.agentFor(o.ca ?? extraCa()), target, url, o));
}

function send(
  request: RequestFn,
  agent: Agent,
  target: URL,
  url: string,
  o: ClientRequestOptions,
): Promise<IncomingMessage> {
  const headers: Record<string, string> = { accept: "application/json, text/event-stream", ...o.headers };
  let payload: string | undefined;
  if (o.body !== undefined) {
    payload = typeof o.body === "string" ? o.body : JSON.stringify(o.body);
    headers["content-type"] ??= "application/json";
    headers["content-length"] = String(Buffer.byteLength(payload));
  }
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  return new Promise((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(o.signal.reason);
      return;
    }
    const req = request(target, {
      method: o.method ?? (payload === undefined ? "GET" : "POST"),
      headers,
      agent,
      signal: o.signal,
    });
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    if (o.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        req.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" }));
      }, o.timeoutMs);
    }
    // small writes (a request, a token) must not wait for Nagle's algorithm
    req.once("socket", (socket) => socket.setNoDelay(true));
    req.once("information", () => clearTimeout(timer));
    req.once("response", (res) => {
      clearTimeout(timer);
      resolve(res);
    });
    req.once("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (o.signal?.aborted) reject(o.signal.reason);
      else
        reject(
          describeTlsFailure(err, url, o.what ?? "the server") ??
            new UnreachableError(
              url,
              timedOut
                ? `no answer within ${formatMs(o.timeoutMs ?? 0)} (is it frozen or overloaded?)`
                : describeNetworkError(err),
              o.what,
              timedOut,
            ),
        );
    });
    req.end(payload);
  });
}

/** Reads a whole response body as text. */
export function readBody(res: IncomingMessage): Promise<string> {
  // events, not `for await`: an async iterator per answer is a measurable share of the queen's hot path
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let ended = false;
    res.on("data", (chunk: Buffer) => chunks.push(chunk));
    res.once("end", () => {
      ended = true;
      resolve(chunks.length === 1 ? (chunks[0] as Buffer).toString("utf8") : Buffer.concat(chunks).toString("utf8"));
    });
    res.once("error", reject);
    // a connection that closes before the body ended, without an error: not an answer
    res.once("close", () => {
      if (!ended)
        reject(Object.assign(new Error("the connection closed before the answer ended"), { code: "ECONNRESET" }));
    });
  });
}

/** Turns an error response into an HttpStatusError, with the peer's own message when it sent one. */
export async function toStatusError(res: IncomingMessage, url: string, what = "the server"): Promise<HttpStatusError> {
  const text = await readBody(res).catch(() => "");
  const parsed = parseJson(text);
  const status = res.statusCode ?? 500;
  const retryAfter = Number(res.headers["retry-after"]);
  const retry = Number.isFinite(retryAfter) ? retryAfter : undefined;
  const body = parsed.ok ? readErrorBody(parsed.value) : undefined;
  if (body) {
    const e = body.error;
    return new HttpStatusError(status, e.message, e.code ?? "error", parsed.ok ? parsed.value : text, retry, e.param);
  }
  const snippet = text.trim().slice(0, 200);
  return new HttpStatusError(
    status,
    `${what} answered HTTP ${status}${snippet ? `: ${snippet}` : ""} (${url})`,
    "http_error",
    text,
    retry,
  );
}

/**
 * The contract's main entry (its schemas, with zod), imported once by the first requestJson: the
 * schema's caller has zod loaded already, and a client that never validates with a schema loads
 * neither. Kept, so that each later call (a hive's heartbeat, every few seconds) does not go
 * through the module loader again.
 */
let schemasModule: Promise<typeof import("@rbee/contract")> | undefined;
const contractSchemas = () => {
  schemasModule ??= import("@rbee/contract");
  return schemasModule;
};

/**
 * Calls a JSON endpoint and validates the reply (leniently, as replies from peers are read).
 * Errors: UnreachableError when the peer cannot be reached, HttpStatusError for an error status.
 */
export async function requestJson<S extends z.ZodType>(
  url: string,
  schema: S,
  o: ClientRequestOptions = {},
): Promise<z.output<S>> {
  const { safeParse } = await contractSchemas();
  return requestJsonWith(url, (value, what) => safeParse(schema, value, what), o);
}

/** {@link requestJson} with a reader of its own instead of a schema (a hot path's cheaper check). */
export async function requestJsonWith<T>(
  url: string,
  read: (value: unknown, what: string) => ParseResult<T>,
  o: ClientRequestOptions = {},
): Promise<T> {
  const res = await sendRequest(url, o);
  if ((res.statusCode ?? 500) >= 400) throw await toStatusError(res, url, o.what);
  const text = await readBody(res);
  const parsed = parseJson(text);
  if (!parsed.ok)
    throw new RbeeError(`${o.what ?? "the server"} sent a reply that is not JSON (${url})`, {
      statusCode: 502,
      code: "bad_gateway",
    });
  const result = read(parsed.value, `reply from ${o.what ?? url}`);
  if (!result.ok) throw new RbeeError(result.error.message, { statusCode: 502, code: "bad_gateway" });
  return result.value;
}

/**
 * Opens an SSE stream (GET, or POST when there is a body) and yields its events. An error status
 * throws before the first event. Aborting the signal closes the connection.
 */
export async function* streamSse(url: string, o: ClientRequestOptions = {}): AsyncGenerator<SseMessage> {
  const res = await sendRequest(url, { ...o, headers: { accept: "text/event-stream", ...o.headers } });
  if ((res.statusCode ?? 500) >= 400) throw await toStatusError(res, url, o.what);
  let idle = false;
  if (o.idleTimeoutMs !== undefined) {
    res.setTimeout(o.idleTimeoutMs, () => {
      idle = true;
      res.destroy(new Error("idle"));
    });
  }
  try {
    yield* parseSse(res);
  } catch (err) {
    if (o.signal?.aborted) return;
    if (idle)
      throw new UnreachableError(
        url,
        `the stream sent nothing for ${formatMs(o.idleTimeoutMs ?? 0)} (is it frozen or overloaded?)`,
        o.what,
        true,
      );
    throw new UnreachableError(url, `the stream broke: ${describeNetworkError(err as NodeJS.ErrnoException)}`, o.what);
  } finally {
    // the socket may be reused (keep-alive): no idle timer of this stream stays on it
    if (o.idleTimeoutMs !== undefined && res.socket) res.socket.setTimeout(0);
    res.destroy();
  }
}

/**
 * A signal that aborts when either of two does, with the reason of the first, and `unlink` to drop
 * its listeners once the work is done. For a hot path: `AbortSignal.any` keeps weak references to
 * every signal it combines and costs several times more per request.
 */
export function linkSignals(a: AbortSignal, b: AbortSignal): { signal: AbortSignal; unlink: () => void } {
  if (a.aborted) return { signal: a, unlink: () => {} };
  if (b.aborted) return { signal: b, unlink: () => {} };
  const link = new AbortController();
  const fromA = () => link.abort(a.reason);
  const fromB = () => link.abort(b.reason);
  a.addEventListener("abort", fromA, { once: true });
  b.addEventListener("abort", fromB, { once: true });
  return {
    signal: link.signal,
    unlink: () => {
      a.removeEventListener("abort", fromA);
      b.removeEventListener("abort", fromB);
    },
  };
}
