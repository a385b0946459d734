import type { ChatMessage, InferResponse } from "@rbee/contract";
import type { CountTokensRequest, MessagesRequest } from "./anthropic-schemas.js";
import { turnMessages } from "./anthropic-tools.js";

/** The request's system prompt and messages as the worker's chat. */
export function chatOf(req: MessagesRequest | CountTokensRequest): ChatMessage[] {
  const messages: ChatMessage[] = [];
  const names = new Map<string, string>();
  if (req.system !== undefined) {
    const system = typeof req.system === "string" ? req.system : req.system.map((b) => b.text).join("\n");
    if (system !== "") messages.push({ role: "system", content: system });
  }
  req.messages.forEach((m, i) => {
    messages.push(...turnMessages(m, `messages.${i}`, names));
  });
  return messages;
}

export type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use";

/**
 * Anthropic's stop_reason: `max_tokens` when the limit ended it, `stop_sequence` when one of the
 * request's stop_sequences did (the worker says which in `stop_sequence`), else `end_turn`.
 */
export function stopReason(r: InferResponse): { stop_reason: StopReason; stop_sequence: string | null } {
  if (r.finish_reason === "length") return { stop_reason: "max_tokens", stop_sequence: null };
  if (r.finish_reason === "tool_calls") return { stop_reason: "tool_use", stop_sequence: null };
  const matched = (r as { stop_sequence?: unknown }).stop_sequence;
  if (typeof matched === "string") return { stop_reason: "stop_sequence", stop_sequence: matched };
  return { stop_reason: "end_turn", stop_sequence: null };
}

/** Anthropic's usage: input_tokens counts the prompt tokens not read from the cache; those are cache_read_input_tokens. */
export function usageOf(r: InferResponse) {
  const cached = r.cached_tokens ?? 0;
  return {
    input_tokens: Math.max(0, r.prompt_tokens - cached),
    output_tokens: r.tokens_generated,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
  };
}
