import { RbeeError } from "@rbee/contract";

/**
 * The Hub refused: 401 (no token, or a token it does not accept), 403, or a gated repo whose terms
 * were not accepted. Not retryable: the message says what to do.
 */
export class HfAuthError extends RbeeError {
  constructor(
    message: string,
    readonly status: number,
    readonly repo: string,
  ) {
    super(message, {
      statusCode: status === 403 ? 403 : 401,
      code: "hf_unauthorized",
      retryable: false,
      details: { repo, status },
    });
  }
}

/** The repo, the revision or the file is not on the Hub (`X-Error-Code` says which). */
export class HfNotFoundError extends RbeeError {
  constructor(
    message: string,
    readonly what: "repo" | "revision" | "file",
    readonly repo: string,
    readonly path?: string,
  ) {
    super(message, { statusCode: 404, code: `hf_${what}_not_found`, retryable: false, details: { repo, what, path } });
  }
}

/** The Hub (HF_ENDPOINT) could not be reached, timed out, or answered 429/5xx: worth retrying. */
export class HfUnavailableError extends RbeeError {
  constructor(
    message: string,
    readonly endpoint: string,
    readonly status?: number,
    cause?: unknown,
  ) {
    super(message, {
      statusCode: 503,
      code: "hf_unavailable",
      retryable: true,
      retryAfterSeconds: 5,
      details: { endpoint, status },
      cause,
    });
  }
}

/** The Hub answered something this client does not understand. */
export class HfProtocolError extends RbeeError {
  constructor(message: string, details?: Record<string, unknown>) {
    super(message, { statusCode: 502, code: "hf_bad_reply", details });
  }
}
