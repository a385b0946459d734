/** How a download retries: `attempts` tries in a row without progress, backing off exponentially with jitter. */
export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export function retryPolicy(o: Partial<RetryPolicy> = {}): RetryPolicy {
  return {
    attempts: Math.max(1, o.attempts ?? 5),
    baseDelayMs: o.baseDelayMs ?? 500,
    maxDelayMs: o.maxDelayMs ?? 30_000,
  };
}

/** An error status from a server, kept as data until it becomes a DownloadError. */
export class HttpStatusFailure extends Error {
  constructor(
    readonly status: number,
    readonly retryAfterMs: number | undefined,
    readonly hubErrorCode: string | undefined,
    readonly serverMessage: string | undefined,
  ) {
    super(`HTTP ${status}${serverMessage ? `: ${serverMessage}` : ""}`);
  }
}

/** Network failures worth another try: the next one resumes from the bytes on disk. */
const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENOTCONN",
  "EPROTO",
  "ERR_STREAM_PREMATURE_CLOSE",
  "ERR_SOCKET_CONNECTION_TIMEOUT",
  "UND_ERR_SOCKET",
]);

/** Statuses worth another try; 401, 403, 404, 410 and the other 4xx are final. */
export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export function isTransient(err: unknown): boolean {
  if (err instanceof HttpStatusFailure) return isTransientStatus(err.status);
  const e = err as NodeJS.ErrnoException | undefined;
  if (typeof e?.code === "string" && TRANSIENT_CODES.has(e.code)) return true;
  return typeof e?.message === "string" && /socket hang up|premature close/i.test(e.message);
}

/** A short reason for people: "the connection was reset", "HTTP 503". */
export function describeFailure(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  switch (e?.code) {
    case "ECONNRESET":
      return "the connection was reset";
    case "ECONNREFUSED":
      return "the connection was refused";
    case "ETIMEDOUT":
      return e.message || "timed out";
    case "ERR_STREAM_PREMATURE_CLOSE":
      return e.message || "the connection closed early";
    case "ENOTFOUND":
      return "unknown host";
    default:
      return e?.message ?? String(err);
  }
}

/** The wait before retry number `failures` (1-based): base·2ⁿ⁻¹ capped, with jitter, or what the server asked. */
export function backoffMs(policy: RetryPolicy, failures: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(Math.max(0, retryAfterMs), 10 * 60_000);
  const capped = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, failures - 1));
  return Math.round(capped * (0.5 + Math.random() * 0.5));
}

/**
 * When to retry, from `Retry-After` (seconds or an HTTP date) or, failing that, the Hub's
 * rate-limit header (`RateLimit: "api";r=0;t=55`).
 */
export function retryAfterMs(headers: Readonly<Record<string, string>>): number | undefined {
  const ra = headers["retry-after"]?.trim();
  if (ra) {
    if (/^\d+(\.\d+)?$/.test(ra)) return Number(ra) * 1000;
    const at = Date.parse(ra);
    if (Number.isFinite(at)) return Math.max(0, at - Date.now());
  }
  const rl = headers.ratelimit;
  const t = rl ? /(?:^|;)\s*t=(\d+)/.exec(rl) : null;
  if (t && /(?:^|;)\s*r=0\b/.test(rl ?? "")) return Number(t[1]) * 1000;
  return undefined;
}

/** Waits `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
