import { parseSse, type SseMessage } from "@rbee/contract";

export interface JsonReply<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

function authHeaders(token?: string): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** GET a URL and parse the body as JSON when it is JSON. */
export async function getJson<T = any>(url: string, token?: string): Promise<JsonReply<T>> {
  const res = await fetch(url, { headers: authHeaders(token) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body: body as T, text };
}

/** POST a JSON body (or a raw string sent as is) and parse the reply as JSON when it is JSON. */
export async function postJson<T = any>(
  url: string,
  body: unknown,
  options: { token?: string; signal?: AbortSignal; headers?: Record<string, string> } = {},
): Promise<JsonReply<T>> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...authHeaders(options.token), ...options.headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal: options.signal,
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

export interface ParsedSse {
  event: string;
  data: any;
  id: string | undefined;
}

/**
 * POSTs a body (or GETs, with `method`) and reads the SSE reply. `onEvent` may return "stop" to disconnect mid-stream
 * (the test's way of being a client that goes away).
 */
export async function postSse(
  url: string,
  body: unknown,
  options: { token?: string; method?: string; onEvent?: (e: ParsedSse) => "stop" | undefined } = {},
): Promise<{ status: number; events: ParsedSse[]; headers: Headers; disconnected: boolean }> {
  const abort = new AbortController();
  const res = await fetch(url, {
    method: options.method ?? "POST",
    headers: { "content-type": "application/json", ...authHeaders(options.token) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: abort.signal,
  });
  const events: ParsedSse[] = [];
  if (!res.ok || !res.body) {
    const text = await res.text();
    let data: unknown = text;
    try {
      data = JSON.parse(text);
    } catch {}
    return {
      status: res.status,
      events: [{ event: "http_error", data, id: undefined }],
      headers: res.headers,
      disconnected: false,
    };
  }
  let disconnected = false;
  try {
    for await (const msg of parseSse(res.body as AsyncIterable<Uint8Array>)) {
      const e = toParsed(msg);
      events.push(e);
      if (options.onEvent?.(e) === "stop") {
        disconnected = true;
        abort.abort();
        break;
      }
    }
  } catch (err) {
    if (!disconnected) throw err;
  }
  return { status: res.status, events, headers: res.headers, disconnected };
}

function toParsed(msg: SseMessage): ParsedSse {
  let data: unknown = msg.data;
  try {
    data = JSON.parse(msg.data);
  } catch {}
  return { event: msg.event, data, id: msg.id };
}

/** Polls `probe` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 15_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A queen job run to its end: its events, and the result of `done` or the `error` event. */
export async function runJob(
  queenUrl: string,
  operation: Record<string, unknown>,
  token?: string,
): Promise<{ events: Array<Record<string, any>>; result?: any; error?: { code: string; message: string } }> {
  const created = await postJson(`${queenUrl}/v1/jobs`, { operation }, { token });
  if (created.status !== 202) throw new Error(`job refused (HTTP ${created.status}): ${created.text}`);
  const stream = await postSse(`${queenUrl}${created.body.sse_url}`, undefined, { token, method: "GET" });
  const events = stream.events.map((e) => e.data as Record<string, any>);
  const last = events.at(-1);
  if (last?.type === "done") return { events, result: last.result };
  return { events, error: { code: String(last?.code ?? last?.type), message: String(last?.message ?? "") } };
}
