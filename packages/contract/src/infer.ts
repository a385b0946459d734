import { z } from "zod";

export const ChatRole = z.enum(["system", "user", "assistant"]);
export type ChatRole = z.infer<typeof ChatRole>;

export const ChatMessage = z.strictObject({
  role: ChatRole,
  content: z.string(),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

export const StopSequences = z.union([z.string().min(1), z.array(z.string().min(1)).max(16)]);

/**
 * `POST /v1/infer`. Exactly one of `prompt` (raw text, no template) and `messages`
 * (formatted with the model's chat template) is given. Unknown fields are refused.
 */
export const InferRequest = z
  .strictObject({
    model: z
      .string()
      .min(1)
      .optional()
      .describe("checked against the worker's model when given; engines with several models route by it"),
    prompt: z.string().optional().describe("raw text to continue, no chat template applied"),
    messages: z.array(ChatMessage).min(1).optional().describe("a chat, formatted with the model's chat template"),
    max_tokens: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe("tokens to generate at most; default: until the model stops or the context is full"),
    temperature: z.number().min(0).max(10).optional().describe("0 is greedy (deterministic); default 0.8"),
    top_p: z.number().min(0).max(1).optional().describe("nucleus sampling; default 0.95"),
    top_k: z.number().int().min(0).optional().describe("sample from the k most likely tokens; 0 is off; default 40"),
    min_p: z.number().min(0).max(1).optional().describe("drop tokens below min_p × the top probability; default 0.05"),
    repeat_penalty: z.number().min(0).max(10).optional().describe("divides the logits of recent tokens; 1 is off"),
    presence_penalty: z.number().min(-2).max(2).optional(),
    frequency_penalty: z.number().min(-2).max(2).optional(),
    seed: z.number().int().min(0).max(0xffff_ffff).optional().describe("makes sampling repeatable"),
    stop: StopSequences.optional().describe("text that ends generation; not included in the output"),
    stream: z.boolean().optional().describe("answer as Server-Sent Events: token..., then done or error"),
    json_schema: z
      .record(z.string(), z.unknown())
      .optional()
      .describe("a JSON Schema the output must satisfy; generation is grammar-constrained"),
  })
  .refine((r) => (r.prompt === undefined) !== (r.messages === undefined), {
    message: "give exactly one of prompt or messages",
    path: ["prompt"],
  });
export type InferRequest = z.infer<typeof InferRequest>;

export const FinishReason = z.enum(["stop", "length", "cancelled"]);
export type FinishReason = z.infer<typeof FinishReason>;

/** The reply to `POST /v1/infer`, and the data of the stream's `done` event. */
export const InferResponse = z.looseObject({
  text: z.string().describe("all generated text, stop strings excluded"),
  tokens_generated: z.number().int().nonnegative(),
  prompt_tokens: z.number().int().nonnegative(),
  cached_tokens: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .describe("prompt tokens whose evaluation was reused from a previous request's cache"),
  duration_ms: z.number().nonnegative().describe("from accepting the request to its last token, queueing included"),
  time_to_first_token_ms: z
    .number()
    .nonnegative()
    .optional()
    .describe("from accepting the request to its first generated token, queueing included"),
  finish_reason: FinishReason.describe(
    "stop: the model or a stop string ended it; length: max_tokens or the context; cancelled: the client left or the worker stopped",
  ),
  model: z.string().optional(),
});
export type InferResponse = z.infer<typeof InferResponse>;

/** Data of the stream's `token` event. `index` counts events from 0. */
export const TokenEvent = z.looseObject({
  text: z.string(),
  index: z.number().int().nonnegative(),
});
export type TokenEvent = z.infer<typeof TokenEvent>;

/** Data of a stream's `error` event: the terminal event of a stream that failed. */
export const ErrorEvent = z.looseObject({
  code: z.string(),
  message: z.string(),
});
export type ErrorEvent = z.infer<typeof ErrorEvent>;

/**
 * The worker's SSE stream for `stream: true`: `token` events, then exactly one of `done` or `error`.
 */
export const InferStreamEvent = z.discriminatedUnion("event", [
  z.strictObject({ event: z.literal("token"), data: TokenEvent }),
  z.strictObject({ event: z.literal("done"), data: InferResponse }),
  z.strictObject({ event: z.literal("error"), data: ErrorEvent }),
]);
export type InferStreamEvent = z.infer<typeof InferStreamEvent>;
