import { type Http1Response, http1Request } from "./http1-client.js";
import { HttpStatusFailure, retryAfterMs } from "./retry.js";

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
/** Headers that must not follow a redirect to another origin (a CDN link is signed; a token there would leak). */
const CREDENTIALS = new Set(["authorization", "cookie", "proxy-authorization"]);

/** A response with the file's bytes, after the redirects. */
export interface OpenedResponse {
  res: Http1Response;
  /** The file's entity tag, unquoted: `X-Linked-Etag` from a redirect (the Hub's), else a strong `ETag`. */
  etag: string | null;
  /** `X-Linked-Size` from a redirect: the file's size as the Hub knows it. */
  linkedSize: number | null;
}

/** An entity tag without quotes; null for a weak one (W/"..."), which says nothing about the bytes. */
export function strongEtag(value: string | undefined): string | null {
  if (!value) return null;
  const v = value.trim();
  if (v.startsWith("W/")) return null;
  return v.replace(/^"(.*)"$/, "$1") || null;
}

function errorMessage(res: Http1Response, body: string): string | undefined {
  const fromHeader = res.headers["x-error-message"];
  if (fromHeader) return fromHeader;
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === "string") return parsed.error;
    if (typeof parsed.error === "object" && parsed.error && "message" in parsed.error)
      return String((parsed.error as { message: unknown }).message);
  } catch {}
  const text = body.trim().replace(/\s+/g, " ");
  return text && !text.startsWith("<") ? text.slice(0, 200) : undefined;
}

/**
 * GETs (or HEADs) a URL, following redirects (301, 302, 303, 307, 308) and dropping credentials
 * when a redirect leaves the origin, as huggingface_hub does for the Hub's CDN. An error status
 * becomes an HttpStatusFailure carrying the server's message (`X-Error-Message` or JSON `error`),
 * the Hub's `X-Error-Code` and `Retry-After`; 416 is returned for the caller to judge.
 */
export async function openResponse(
  url: string,
  headers: Record<string, string>,
  o: { signal?: AbortSignal; stallTimeoutMs: number; method?: "GET" | "HEAD" },
): Promise<OpenedResponse> {
  let current = new URL(url);
  let sent = { ...headers };
  let etag: string | null = null;
  let linkedSize: number | null = null;
  for (let hop = 0; ; hop++) {
    const res = await http1Request(current, {
      method: o.method,
      headers: sent,
      signal: o.signal,
      stallTimeoutMs: o.stallTimeoutMs,
    });
    const location = res.headers.location;
    if (REDIRECTS.has(res.status) && location) {
      etag ??= strongEtag(res.headers["x-linked-etag"]);
      const size = Number(res.headers["x-linked-size"]);
      if (linkedSize === null && Number.isSafeInteger(size) && size >= 0) linkedSize = size;
      // a small redirect body is read so the connection can serve the next request
      if (res.contentLength !== null && res.contentLength <= 16 * 1024) await res.text().catch(() => undefined);
      else res.close();
      if (hop >= MAX_REDIRECTS)
        throw new HttpStatusFailure(res.status, undefined, undefined, `more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, current);
      if (next.protocol !== "http:" && next.protocol !== "https:")
        throw new HttpStatusFailure(
          res.status,
          undefined,
          undefined,
          `a redirect to an unsupported URL: ${next.protocol}`,
        );
      if (next.origin !== current.origin)
        sent = Object.fromEntries(Object.entries(sent).filter(([k]) => !CREDENTIALS.has(k.toLowerCase())));
      current = next;
      continue;
    }
    if (res.status >= 400 && res.status !== 416) {
      const body = await res.text(16 * 1024).catch(() => "");
      throw new HttpStatusFailure(
        res.status,
        retryAfterMs(res.headers),
        res.headers["x-error-code"],
        errorMessage(res, body),
      );
    }
    etag ??= strongEtag(res.headers.etag);
    return { res, etag, linkedSize };
  }
}
