import { RbeeError, safeParse } from "@rbee/contract";
import type { z } from "zod";
import type { EngineClient } from "./engine-client.js";

/**
 * Reads the endpoint that says an engine is there and what it is (Ollama's /api/version, ComfyUI's
 * /system_stats) when an adapter loads: no answer is 503 `engine_unreachable` with what to do
 * (`hint`), an answer of another shape 502 `bad_gateway` naming what is wrong with it.
 */
export async function probeEngine<S extends z.ZodType>(
  client: EngineClient,
  path: string,
  schema: S,
  o: { product: string; hint: string; signal: AbortSignal },
): Promise<z.output<S>> {
  let raw: unknown;
  try {
    raw = await client.json(path, { timeoutMs: 10_000, signal: o.signal });
  } catch (err) {
    throw new RbeeError(`no ${o.product} answers at ${client.baseUrl}: ${(err as Error).message}; ${o.hint}`, {
      statusCode: 503,
      code: "engine_unreachable",
      retryable: true,
    });
  }
  const parsed = safeParse(schema, raw, `${client.name} ${path}`);
  if (!parsed.ok) {
    throw new RbeeError(`${client.baseUrl} does not answer ${path} as ${o.product} does: ${parsed.error.message}`, {
      statusCode: 502,
      code: "bad_gateway",
    });
  }
  return parsed.value;
}
