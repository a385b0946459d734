import type { RbeeError } from "@rbee/contract";
import type { HttpContext } from "@rbee/server-kit";

/** Anthropic's error types, by HTTP status, as its SDKs expect them. */
function errorType(err: RbeeError): string {
  switch (err.statusCode) {
    case 400:
    case 422:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    default:
      return err.statusCode >= 500 ? "api_error" : "invalid_request_error";
  }
}

/** `{"type": "error", "error": {"type", "message"}}`: Anthropic's error body, also the data of a stream's `error` event. */
export function anthropicErrorBody(err: RbeeError) {
  return { type: "error", error: { type: errorType(err), message: err.message } };
}

/** Writes an error in Anthropic's shape, or as the stream's `error` event once a stream started. */
export function writeAnthropicError(ctx: HttpContext, err: RbeeError): void {
  const stream = ctx.stream;
  if (stream) {
    if (!stream.closed) void stream.send("error", anthropicErrorBody(err)).finally(() => stream.close());
    return;
  }
  if (ctx.res.headersSent) {
    ctx.res.destroy();
    return;
  }
  const headers: Record<string, string | number> = { "request-id": ctx.requestId };
  if (err.retryAfterSeconds !== undefined) headers["retry-after"] = Math.max(1, Math.ceil(err.retryAfterSeconds));
  if (err.statusCode === 401) headers["www-authenticate"] = 'Bearer realm="rbee"';
  ctx.send(err.statusCode, anthropicErrorBody(err), headers);
}
