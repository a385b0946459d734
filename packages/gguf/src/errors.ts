import { RbeeError } from "@rbee/contract";

/** Bytes that are not a GGUF header this reader understands: bad magic, a truncated header, an unknown type. */
export class GgufFormatError extends RbeeError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, { statusCode: 400, code: "invalid_gguf", details });
  }
}

/**
 * A remote GGUF whose header could not be fetched: the server answered an error status, or could not
 * be reached. `status` is the HTTP status (undefined when nothing answered); `url` has no query
 * string, so signed CDN URLs do not end up in logs.
 */
export class RemoteFileError extends RbeeError {
  constructor(
    message: string,
    readonly url: string,
    readonly status: number | undefined,
    cause?: unknown,
  ) {
    super(message, {
      statusCode: status === undefined ? 503 : status === 401 || status === 403 || status === 404 ? status : 502,
      code: status === undefined ? "remote_unreachable" : "remote_http_error",
      retryable: status === undefined || status === 429 || status >= 500,
      details: { url, status },
      cause,
    });
  }
}

/** `url` without its query string and fragment (which can hold signatures and tokens). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url.replace(/[?#].*$/, "");
  }
}
