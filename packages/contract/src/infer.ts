import { z } from "zod";

export const ChatRole = z.enum(["system", "user", "assistant", "tool"]);
export type ChatRole = z.infer<typeof ChatRole>;

/** A call of one of the request's tools, as the model made it. */
export const ToolCall = z.strictObject({
  id: z.string().min(1).describe("names the call; a `tool` message answers it with the same tool_call_id"),
  name: z.string().min(1),
  arguments: z.string().describe("the arguments as JSON text (an object matching the tool's parameters)"),
});
export type ToolCall = z.infer<typeof ToolCall>;

export const ChatMessage = z.strictObject({
  role: ChatRole,
  content: z.string(),
  tool_calls: z.array(ToolCall).optional().describe("assistant messages: the tools the model called in this turn"),
  tool_call_id: z.string().optional().describe("tool messages: the call this message gives the result of"),
  name: z.string().optional().describe("tool messages: the tool's name, when tool_call_id does not say it"),
});
export type ChatMessage = z.infer<typeof ChatMessage>;

/** A function the model may call. How the model sees it is its chat template's business. */
export const ToolDefinition = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, "must be 1-64 letters, digits, '_', '.' or '-'")
    .describe("the function's name"),
  description: z.string().optional(),
  parameters: z
    .record(z.string(), z.unknown())
    .optional()
    .describe("a JSON Schema of the arguments object; the call's arguments are grammar-constrained to it"),
});
export type ToolDefinition = z.infer<typeof ToolDefinition>;

/**
 * Whether the model calls tools: `auto` (it decides), `none` (it answers in text; the tools are still
 * described to it), `required` (it calls at least one), or `{name}` (it calls that one).
 */
export const ToolChoice = z.union([z.enum(["auto", "none", "required"]), z.strictObject({ name: z.string().min(1) })]);
export type ToolChoice = z.infer<typeof ToolChoice>;

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
    tools: z.array(ToolDefinition).max(128).optional().describe("functions the model may call (chat only)"),
    tool_choice: ToolChoice.optional().describe("default auto when tools are given"),
    parallel_tool_calls: z.boolean().optional().describe("whether one turn may hold several calls; default true"),
    logprobs: z
      .number()
      .int()
      .min(0)
      .max(20)
      .optional()
      .describe("return each generated token's log-probability and those of this many most likely alternatives"),
    suffix: z
      .string()
      .optional()
      .describe(
        "prompt only: text that comes after the generated text (fill-in-the-middle with the model's FIM tokens)",
      ),
  })
  .refine((r) => (r.prompt === undefined) !== (r.messages === undefined), {
    message: "give exactly one of prompt or messages",
    path: ["prompt"],
  })
  .refine((r) => r.tools === undefined || r.messages !== undefined, {
    message: "tools need messages (a chat)",
    path: ["tools"],
  })
  .refine((r) => r.suffix === undefined || r.prompt !== undefined, {
    message: "suffix needs prompt (fill-in-the-middle)",
    path: ["suffix"],
  })
  .refine(
    (r) =>
      typeof r.tool_choice !== "object" || r.tools?.some((t) => t.name === (r.tool_choice as { name: string }).name),
    {
      message: "tool_choice names a tool that is not in tools",
      path: ["tool_choice"],
    },
  );
export type InferRequest = z.infer<typeof InferRequest>;

export const FinishReason = z.enum(["stop", "length", "cancelled", "tool_calls"]);
export type FinishReason = z.infer<typeof FinishReason>;

/** One candidate token and its log-probability (natural log). */
export const TopLogprob = z.looseObject({
  token: z.string(),
  logprob: z.number(),
  bytes: z.array(z.number().int()).nullable(),
});
export type TopLogprob = z.infer<typeof TopLogprob>;

/** A generated token, its log-probability, and the most likely alternatives at its position. */
export const TokenLogprob = z.looseObject({
  token: z.string(),
  logprob: z.number(),
  bytes: z.array(z.number().int()).nullable(),
  top_logprobs: z.array(TopLogprob),
});
export type TokenLogprob = z.infer<typeof TokenLogprob>;

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
    "stop: the model or a stop string ended it; length: max_tokens or the context; cancelled: the client left or the worker stopped; tool_calls: the model called tools",
  ),
  stop_sequence: z
    .string()
    .optional()
    .describe("the request's stop string that ended generation (finish_reason stop); absent when the model ended it"),
  model: z.string().optional(),
  tool_calls: z.array(ToolCall).optional().describe("the tools the model called, when finish_reason is tool_calls"),
  logprobs: z
    .array(TokenLogprob)
    .optional()
    .describe("one entry per generated token, when the request asked for logprobs"),
});
export type InferResponse = z.infer<typeof InferResponse>;

/** Data of the stream's `token` event. `index` counts events from 0. */
export const TokenEvent = z.looseObject({
  text: z.string(),
  index: z.number().int().nonnegative(),
  logprobs: z.array(TokenLogprob).optional().describe("the tokens of this event, when the request asked for logprobs"),
});
export type TokenEvent = z.infer<typeof TokenEvent>;

/**
 * Data of the stream's `tool_call` event: a piece of a tool call. The first piece of call `index`
 * carries its `id` and `name`; the `arguments` pieces of a call, joined, are its JSON arguments.
 */
export const ToolCallEvent = z.looseObject({
  index: z.number().int().nonnegative().describe("which call of this turn, from 0"),
  id: z.string().optional(),
  name: z.string().optional(),
  arguments: z.string(),
});
export type ToolCallEvent = z.infer<typeof ToolCallEvent>;

/** Data of a stream's `error` event: the terminal event of a stream that failed. */
export const ErrorEvent = z.looseObject({
  code: z.string(),
  message: z.string(),
});
export type ErrorEvent = z.infer<typeof ErrorEvent>;

/**
 * The worker's SSE stream for `stream: true`: `token` and `tool_call` events, then exactly one of
 * `done` or `error`.
 */
export const InferStreamEvent = z.discriminatedUnion("event", [
  z.strictObject({ event: z.literal("token"), data: TokenEvent }),
  z.strictObject({ event: z.literal("tool_call"), data: ToolCallEvent }),
  z.strictObject({ event: z.literal("done"), data: InferResponse }),
  z.strictObject({ event: z.literal("error"), data: ErrorEvent }),
]);
export type InferStreamEvent = z.infer<typeof InferStreamEvent>;
