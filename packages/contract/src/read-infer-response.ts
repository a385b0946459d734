import { FinishReason, InferResponse } from "./infer.js";
import { isCount, isOptional, isRecord, isString } from "./read-checks.js";
import { type ParseResult, safeParse } from "./validate.js";

const FINISH_REASONS: ReadonlySet<unknown> = new Set(FinishReason.options);

/**
 * A worker's `InferResponse` (its JSON answer, or its stream's `done` event), read on the queen's
 * hot path. The common answer, plain text with neither tool calls nor logprobs, is checked field by
 * field, at a fraction of the schema's cost; anything else goes through the schema. What is
 * accepted, and what is refused, is what `InferResponse` accepts and refuses.
 */
export function readInferResponse(value: unknown, what: string): ParseResult<InferResponse> {
  if (isRecord(value)) {
    const r = value;
    if (
      r.tool_calls === undefined &&
      r.logprobs === undefined &&
      isString(r.text) &&
      isCount(r.tokens_generated) &&
      isCount(r.prompt_tokens) &&
      isOptional(r.cached_tokens, isCount) &&
      typeof r.duration_ms === "number" &&
      r.duration_ms >= 0 &&
      isOptional(r.time_to_first_token_ms, (v) => typeof v === "number" && v >= 0) &&
      FINISH_REASONS.has(r.finish_reason) &&
      isOptional(r.stop_sequence, isString) &&
      isOptional(r.model, isString)
    ) {
      return { ok: true, value: r as InferResponse };
    }
  }
  return safeParse(InferResponse, value, what);
}
