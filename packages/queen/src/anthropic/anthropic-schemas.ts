import { z } from "zod";

/**
 * The Anthropic Messages request bodies rbee accepts, field by field as Anthropic documents them.
 * Fields rbee does not use (`metadata`, `cache_control` on blocks, `service_tier`, a disabled
 * `thinking`, and the beta fields agents such as Claude Code add) are accepted and ignored; known
 * fields with wrong values are refused with a 400 in Anthropic's error shape.
 */

const CacheControl = z.looseObject({ type: z.string() }).nullable().optional();

export const TextBlock = z.looseObject({ type: z.literal("text"), text: z.string(), cache_control: CacheControl });

/** Any content block; text is read, the others are refused or skipped by the translation (anthropic-translate.ts). */
export const ContentBlock = z.looseObject({ type: z.string().min(1) });
export type ContentBlock = z.infer<typeof ContentBlock>;

/** Turns; `system` turns in the middle of a conversation are what current agents (Claude Code) send too. */
export const MessageParam = z.looseObject({
  role: z.enum(["user", "assistant", "system"]),
  content: z.union([z.string(), z.array(ContentBlock)]),
});
export type MessageParam = z.infer<typeof MessageParam>;

const System = z.union([z.string(), z.array(TextBlock)]);

const Thinking = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("enabled"), budget_tokens: z.number().int().min(1) }),
  z.looseObject({ type: z.literal("disabled") }),
  z.looseObject({ type: z.literal("adaptive") }),
]);

/** What count_tokens and messages share. */
const shared = {
  model: z.string().min(1),
  messages: z.array(MessageParam).min(1),
  system: System.optional(),
  tools: z.array(z.looseObject({ name: z.string() })).optional(),
  tool_choice: z.looseObject({ type: z.enum(["auto", "any", "tool", "none"]) }).optional(),
  thinking: Thinking.optional(),
};

/** Structured output: `output_config.format` `{type: "json_schema", schema}`; `effort` is ignored. */
const OutputConfig = z.looseObject({
  format: z
    .looseObject({ type: z.literal("json_schema"), schema: z.record(z.string(), z.unknown()) })
    .nullable()
    .optional(),
});

/** `POST /v1/messages`. */
export const MessagesRequest = z.looseObject({
  ...shared,
  output_config: OutputConfig.optional(),
  max_tokens: z.number().int().min(1),
  stop_sequences: z.array(z.string()).max(16).optional(),
  temperature: z.number().min(0).max(1).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  stream: z.boolean().optional(),
  metadata: z.looseObject({ user_id: z.string().nullable().optional() }).optional(),
});
export type MessagesRequest = z.infer<typeof MessagesRequest>;

/** `POST /v1/messages/count_tokens`. */
export const CountTokensRequest = z.looseObject(shared);
export type CountTokensRequest = z.infer<typeof CountTokensRequest>;
