import { FinishReason, InferResponse } from "./infer.js";
import { type ParseResult, safeParse } from "./validate.js";

const FINISH_REASONS: ReadonlySet<unknown> = new Set(FinishReason.options);
const count = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v >= 0;
const optional = (v: unknown, check: (v: unknown) => boolean) => v === undefined || check(v);

/**
 * A worker's `InferResponse` (its JSON answer, or its stream's `done` event), read on the queen's
 * hot path. The common answer, plain text with neither tool calls nor logprobs, is checked field by
 * field, at a fraction of the schema's cost; anything else goes through the schema. What is
 * accepted, and what is refused, is what `InferResponse` accepts and refuses.
 */
export function readInferResponse(value: unknown, what: string): ParseResult<InferResponse> {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    const r = value as Record<string, unknown>;
    if (
      r.tool_calls === undefined &&
      r.logprobs === undefined &&
      typeof r.text === "string" &&
      count(r.tokens_generated) &&
      count(r.prompt_tokens) &&
      optional(r.cached_tokens, count) &&
      typeof r.duration_ms === "number" &&
      r.duration_ms >= 0 &&
      optional(r.time_to_first_token_ms, (v) => typeof v === "number" && v >= 0) &&
      FINISH_REASONS.has(r.finish_reason) &&
      optional(r.stop_sequence, (v) => typeof v === "string") &&
      optional(r.model, (v) => typeof v === "string")
    ) {
      return { ok: true, value: r as InferResponse };
    }
  }
  return safeParse(InferResponse, value, what);
}
