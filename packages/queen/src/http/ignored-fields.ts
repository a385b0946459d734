import type { HttpContext, Logger } from "@rbee/server-kit";

/**
 * Notes the top-level fields of a body that its schema does not know (they were accepted and
 * ignored, as Ollama and Anthropic clients expect): one debug line naming them, and
 * `ignored_fields` in the request's log line.
 */
export function noteIgnoredFields(
  ctx: HttpContext,
  log: Logger,
  known: { shape: Record<string, unknown> },
  body: object,
): void {
  const unknown = Object.keys(body).filter((k) => !(k in known.shape));
  if (unknown.length === 0) return;
  log.debug({ request_id: ctx.requestId, route: ctx.route, ignored_fields: unknown }, "ignored unknown fields");
  ctx.logFields.ignored_fields = unknown.join(",");
}
