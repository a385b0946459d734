import { parseOrThrow, ValidationError } from "@rbee/contract";
import type { HttpContext, Logger } from "@rbee/server-kit";
import type { z } from "zod";

/** Chat histories and prompts can be long. */
export const OPENAI_BODY_LIMIT = 16 * 1024 * 1024;

/** The header that makes the OpenAI routes refuse fields they do not know, as OpenAI does. */
export const STRICT_HEADER = "x-rbee-strict";

/** The field names each schema knows, made once per schema. */
const knownFields = new WeakMap<z.ZodObject, ReadonlySet<string>>();

function known(schema: z.ZodObject): ReadonlySet<string> {
  let names = knownFields.get(schema);
  if (names === undefined) {
    names = new Set(Object.keys(schema.shape));
    knownFields.set(schema, names);
  }
  return names;
}

/** Whether the request asked for strict parsing (`X-Rbee-Strict: 1`, `true` or `yes`). */
export function isStrict(ctx: HttpContext): boolean {
  const value = ctx.header(STRICT_HEADER)?.trim().toLowerCase();
  return value === "1" || value === "true" || value === "yes";
}

/**
 * Reads an OpenAI-style body the way llama.cpp's server and Ollama do: top-level fields the schema
 * does not know are ignored (one debug line names them), known fields are validated. Real clients
 * send fields rbee does not serve (vendor extensions, newer parameters), and a server that refuses
 * them breaks the client. With `X-Rbee-Strict: 1` unknown fields are a 400 that names them.
 */
export async function readLenientBody<S extends z.ZodObject>(
  ctx: HttpContext,
  schema: S,
  what: string,
  log: Logger,
): Promise<z.output<S>> {
  const body = await ctx.jsonObject(what, OPENAI_BODY_LIMIT);
  const fields = known(schema);
  const unknown = Object.keys(body).filter((k) => !fields.has(k));
  if (unknown.length > 0) {
    const names = unknown.map((k) => `'${k}'`).join(", ");
    if (isStrict(ctx))
      throw new ValidationError(
        `${what} has field${unknown.length > 1 ? "s" : ""} rbee does not know: ${names}; remove ${unknown.length > 1 ? "them" : "it"}, or drop the X-Rbee-Strict header to have unknown fields ignored`,
        unknown[0] ?? null,
        { unknown_fields: unknown },
      );
    log.debug({ request_id: ctx.requestId, route: ctx.route, ignored_fields: unknown }, "ignored unknown fields");
    ctx.logFields.ignored_fields = unknown.join(",");
    for (const k of unknown) delete body[k];
  }
  return parseOrThrow(schema, body, what);
}
