import type { RbeeError } from "@rbee/contract";
import type { HttpContext } from "@rbee/server-kit";

/** Ollama's error body: `{"error": "..."}`; its clients raise the text (ollama-js as ResponseError). */
export function ollamaErrorBody(err: RbeeError): { error: string } {
  return { error: err.message };
}

/**
 * Writes an error the way Ollama does: `{"error": "..."}` with the status, or, once an NDJSON stream
 * has started, as its last line (which ollama-js raises from the stream).
 */
export function writeOllamaError(ctx: HttpContext, err: RbeeError): void {
  const res = ctx.res;
  if (res.headersSent) {
    if (!res.writableEnded && !res.destroyed) res.end(`${JSON.stringify(ollamaErrorBody(err))}\n`);
    return;
  }
  const headers: Record<string, string | number> = {};
  if (err.retryAfterSeconds !== undefined) headers["retry-after"] = Math.max(1, Math.ceil(err.retryAfterSeconds));
  ctx.send(err.statusCode, ollamaErrorBody(err), headers);
}
