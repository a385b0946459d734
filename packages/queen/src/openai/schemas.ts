import { KeepAlive, MAX_EMBED_INPUTS } from "@rbee/contract";
import { z } from "zod";

/**
 * The OpenAI request bodies rbee accepts, field by field as OpenAI documents them, plus the
 * extensions llama.cpp's server and Ollama accept (top_k, min_p, repeat_penalty, keep_alive).
 * Like llama.cpp's server and Ollama, and unlike OpenAI, fields it does not know are ignored (see
 * lenient-body.ts; `X-Rbee-Strict: 1` refuses them); bad values of the fields it knows are refused.
 */

const TextPart = z.looseObject({ type: z.literal("text"), text: z.string() });
const ImagePart = z.looseObject({ type: z.enum(["image_url", "input_image", "image"]) });
const AudioPart = z.looseObject({ type: z.enum(["input_audio", "file"]) });
const Content = z.union([z.string(), z.array(z.union([TextPart, ImagePart, AudioPart]))]);

export const ToolCallIn = z.looseObject({
  id: z.string(),
  type: z.literal("function").optional(),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }),
});

export const ChatMessageIn = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
  content: Content.nullable().optional(),
  name: z.string().optional(),
  tool_calls: z.array(ToolCallIn).nullable().optional(),
  tool_call_id: z.string().optional(),
  function_call: z.looseObject({ name: z.string(), arguments: z.string() }).nullable().optional(),
});

const FunctionDefinition = z.looseObject({
  name: z.string().min(1),
  description: z.string().optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  strict: z.boolean().nullable().optional(),
});

export const ToolIn = z.looseObject({ type: z.literal("function"), function: FunctionDefinition });

export const ToolChoiceIn = z.union([
  z.enum(["auto", "none", "required"]),
  z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: z.string().min(1) }) }),
]);

const nullableOptional = <T extends z.ZodType>(t: T) => t.nullable().optional();

const Stop = z.union([z.string(), z.array(z.string()).max(16)]);

/** Sampling and rbee fields shared by chat and text completions. */
const common = {
  model: z.string().min(1),
  temperature: nullableOptional(z.number().min(0).max(2)),
  top_p: nullableOptional(z.number().min(0).max(1)),
  n: nullableOptional(z.number().int().min(1).max(128)),
  stream: nullableOptional(z.boolean()),
  stream_options: nullableOptional(z.looseObject({ include_usage: z.boolean().optional() })),
  stop: nullableOptional(Stop),
  presence_penalty: nullableOptional(z.number().min(-2).max(2)),
  frequency_penalty: nullableOptional(z.number().min(-2).max(2)),
  seed: nullableOptional(z.number().int()),
  logit_bias: nullableOptional(z.record(z.string(), z.number())),
  user: z.string().optional(),
  // extensions (llama.cpp server, Ollama)
  top_k: z.number().int().min(0).optional(),
  min_p: z.number().min(0).max(1).optional(),
  repeat_penalty: z.number().min(0).max(10).optional(),
  keep_alive: KeepAlive.optional(),
};

const ResponseFormat = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("text") }),
  z.looseObject({ type: z.literal("json_object") }),
  z.looseObject({
    type: z.literal("json_schema"),
    json_schema: z.looseObject({
      name: z.string(),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullable().optional(),
      description: z.string().optional(),
    }),
  }),
]);

export const ChatCompletionRequest = z.object({
  ...common,
  messages: z.array(ChatMessageIn).min(1),
  max_tokens: nullableOptional(z.number().int().min(1)),
  max_completion_tokens: nullableOptional(z.number().int().min(1)),
  response_format: ResponseFormat.optional(),
  logprobs: nullableOptional(z.boolean()),
  top_logprobs: nullableOptional(z.number().int().min(0).max(20)),
  tools: nullableOptional(z.array(ToolIn).max(128)),
  tool_choice: nullableOptional(ToolChoiceIn),
  parallel_tool_calls: nullableOptional(z.boolean()),
  functions: nullableOptional(z.array(FunctionDefinition).max(128)),
  function_call: nullableOptional(z.union([z.enum(["auto", "none"]), z.looseObject({ name: z.string().min(1) })])),
  store: nullableOptional(z.boolean()),
  metadata: nullableOptional(z.record(z.string(), z.string())),
  service_tier: nullableOptional(z.string()),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;

export const CompletionRequest = z.object({
  ...common,
  prompt: z.union([z.string(), z.array(z.string()).min(1), z.array(z.number()), z.array(z.array(z.number()))]),
  max_tokens: nullableOptional(z.number().int().min(1)),
  echo: nullableOptional(z.boolean()),
  suffix: nullableOptional(z.string()),
  best_of: nullableOptional(z.number().int()),
  logprobs: nullableOptional(z.number().int().min(0).max(20)),
});
export type CompletionRequest = z.infer<typeof CompletionRequest>;

export const EmbeddingsRequest = z.object({
  model: z.string().min(1),
  input: z.union([
    z.string(),
    z.array(z.string()).min(1).max(MAX_EMBED_INPUTS, `at most ${MAX_EMBED_INPUTS} inputs per request`),
    z.array(z.number()),
    z.array(z.array(z.number())).max(MAX_EMBED_INPUTS, `at most ${MAX_EMBED_INPUTS} inputs per request`),
  ]),
  encoding_format: z.enum(["float", "base64"]).optional(),
  dimensions: z.number().int().optional(),
  user: z.string().optional(),
  keep_alive: KeepAlive.optional(),
});
export type EmbeddingsRequest = z.infer<typeof EmbeddingsRequest>;
