/**
 * The page's one HTTP client: the queen's public API, same origin, with the API key from this
 * browser session when there is one. It never holds the cluster token.
 */

const KEY_STORAGE = "rbee.apiKey";

/** An answer of the API that was not a success, with the message as the API wrote it. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  constructor(message: string, status: number, code?: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

type AuthListener = (needed: boolean) => void;
const authListeners = new Set<AuthListener>();

/** Called with true when the queen answers 401 (a key is needed, or the one kept was refused). */
export function onAuthNeeded(listener: AuthListener): () => void {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}

export function apiKey(): string | null {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null;
  }
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  for (const l of authListeners) l(false);
}

function headers(json: boolean): Record<string, string> {
  const h: Record<string, string> = { accept: json ? "application/json" : "text/event-stream" };
  const key = apiKey();
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

/** The error a failed response carries: OpenAI's `{error: {message, code}}`, else its text. */
async function errorOf(res: Response, what: string): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  let message = text.trim() || `${what} answered ${res.status} ${res.statusText}`;
  let code: string | undefined;
  try {
    const body = JSON.parse(text) as { error?: { message?: string; code?: string } | string; message?: string };
    if (typeof body.error === "object" && body.error?.message) {
      message = body.error.message;
      code = body.error.code ?? undefined;
    } else if (typeof body.error === "string") message = body.error;
    else if (body.message) message = body.message;
  } catch {
    // not JSON: keep the text
  }
  if (res.status === 401) for (const l of authListeners) l(true);
  return new ApiError(message, res.status, code);
}

export interface RequestOptions {
  method?: "GET" | "POST" | "DELETE";
  body?: unknown;
  signal?: AbortSignal;
}

/** A JSON request; throws ApiError with the API's own message on a non-2xx answer. */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const method = options.method ?? (options.body === undefined ? "GET" : "POST");
  const h = headers(true);
  if (method === "POST") h["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: h,
      body: method === "POST" ? JSON.stringify(options.body ?? {}) : undefined,
      signal: options.signal,
    });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new ApiError(`the queen did not answer ${method} ${path}: ${(err as Error).message}`, 0, "unreachable");
  }
  if (!res.ok) throw await errorOf(res, `${method} ${path}`);
  if (res.status === 204) return undefined as T;
  const type = res.headers.get("content-type") ?? "";
  return (type.includes("json") ? await res.json() : await res.text()) as T;
}

export interface SseMessage {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * Reads a server-sent event stream with fetch (EventSource cannot send an Authorization header);
 * with `body`, the request is a POST of that JSON (OpenAI's streamed completions).
 * Resolves when the stream ends; rejects with ApiError when the request is refused, or with the
 * network error when the connection drops.
 */
export async function readSse(
  path: string,
  onMessage: (m: SseMessage) => void,
  options: { signal?: AbortSignal; lastEventId?: string; body?: unknown } = {},
): Promise<void> {
  const h = headers(false);
  if (options.lastEventId !== undefined) h["last-event-id"] = options.lastEventId;
  const post = options.body !== undefined;
  if (post) h["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(path, {
      method: post ? "POST" : "GET",
      headers: h,
      body: post ? JSON.stringify(options.body) : undefined,
      signal: options.signal,
      cache: "no-store",
    });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new ApiError(`the queen did not answer GET ${path}: ${(err as Error).message}`, 0, "unreachable");
  }
  if (!res.ok || !res.body) throw await errorOf(res, `GET ${path}`);
  const parser = new SseParser(onMessage);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value);
    }
  } finally {
    reader.releaseLock();
  }
}

/** The SSE wire format (WHATWG): lines of `field: value`, an empty line ends a message. */
export class SseParser {
  #buffer = "";
  #event = "";
  #data: string[] = [];
  #id: string | undefined;
  readonly #emit: (m: SseMessage) => void;

  constructor(emit: (m: SseMessage) => void) {
    this.#emit = emit;
  }

  push(chunk: string): void {
    this.#buffer += chunk;
    for (;;) {
      const nl = this.#buffer.search(/\r\n|\r|\n/);
      if (nl < 0) return;
      const line = this.#buffer.slice(0, nl);
      const width = this.#buffer.startsWith("\r\n", nl) ? 2 : 1;
      // a lone \r at the end of a chunk may be half of \r\n: wait for the next chunk
      if (width === 1 && this.#buffer[nl] === "\r" && nl === this.#buffer.length - 1) return;
      this.#buffer = this.#buffer.slice(nl + width);
      this.#line(line);
    }
  }

  #line(line: string): void {
    if (line === "") {
      if (this.#data.length > 0)
        this.#emit({ event: this.#event || "message", data: this.#data.join("\n"), id: this.#id });
      this.#event = "";
      this.#data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.#event = value;
    else if (field === "data") this.#data.push(value);
    else if (field === "id") this.#id = value;
  }
}

/** Parses JSON without throwing: one bad message is skipped, not a broken page. */
export function parseJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
