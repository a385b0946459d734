import type { ChatMessage, InferResponse } from "@rbee/contract";
import { ValidationError } from "@rbee/contract";
import type { CountTokensRequest, MessageParam, MessagesRequest } from "./anthropic-schemas.js";

function unsupported(param: string, what: string, instead?: string): never {
  throw new ValidationError(`${what} is not supported by rbee yet${instead ? `; ${instead}` : ""}`, param);
}

/** Blocks of the model's own earlier turns that carry nothing to send back (rbee never makes them). */
const SKIPPED = new Set(["thinking", "redacted_thinking"]);

function blocksText(content: MessageParam["content"], at: string): string {
  if (typeof content === "string") return content;
  const texts: string[] = [];
  content.forEach((block, j) => {
    if (block.type === "text") {
      const text = (block as { text?: unknown }).text;
      if (typeof text !== "string")
        throw new ValidationError(`${at}.content.${j}.text: Field required`, `${at}.content.${j}.text`);
      texts.push(text);
    } else if (SKIPPED.has(block.type)) {
      // dropped: a thinking block from an earlier turn carries no text to give the model again
    } else if (block.type === "tool_use" || block.type === "tool_result") {
      unsupported(`${at}.content.${j}`, `content blocks of type '${block.type}' (tool use)`);
    } else {
      unsupported(`${at}.content.${j}.type`, `content blocks of type '${block.type}'`, "send text blocks");
    }
  });
  return texts.join("\n");
}

/** The request's system prompt and messages as the worker's chat. */
export function chatOf(req: MessagesRequest | CountTokensRequest): ChatMessage[] {
  if (req.tools && req.tools.length > 0)
    unsupported("tools", "tool use", "describe the tools in the system prompt and ask for JSON");
  const messages: ChatMessage[] = [];
  if (req.system !== undefined) {
    const system = typeof req.system === "string" ? req.system : req.system.map((b) => b.text).join("\n");
    if (system !== "") messages.push({ role: "system", content: system });
  }
  req.messages.forEach((m, i) => {
    messages.push({ role: m.role, content: blocksText(m.content, `messages.${i}`) });
  });
  return messages;
}

export type StopReason = "end_turn" | "max_tokens" | "stop_sequence";

/**
 * Anthropic's stop_reason: `max_tokens` when the limit ended it, `stop_sequence` when one of the
 * request's stop_sequences did (the worker says which in `stop_sequence`), else `end_turn`.
 */
export function stopReason(r: InferResponse): { stop_reason: StopReason; stop_sequence: string | null } {
  if (r.finish_reason === "length") return { stop_reason: "max_tokens", stop_sequence: null };
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
