import { z } from "zod";

/**
 * The Ollama request bodies rbee accepts, field by field as Ollama's API documents them. Like
 * Ollama (a Go server), fields it does not know are ignored, and so are runner options that only
 * mean something to Ollama's own runner (num_gpu, num_thread, use_mmap, ...); known fields with
 * wrong values are refused with a 400 that names them.
 */

/** A duration as Ollama takes it: Go's "5m", "1h30m", "300ms", "-1", or a number of seconds. */
export const OllamaKeepAlive = z.union([z.number(), z.string()]);

/** Ollama's `options`: the sampling ones rbee maps, the others accepted and ignored. */
export const OllamaOptions = z.looseObject({
  temperature: z.number().min(0).max(10).optional(),
  top_p: z.number().min(0).max(1).optional(),
  top_k: z.number().int().min(0).optional(),
  min_p: z.number().min(0).max(1).optional(),
  repeat_penalty: z.number().min(0).max(10).optional(),
  presence_penalty: z.number().min(-2).max(2).optional(),
  frequency_penalty: z.number().min(-2).max(2).optional(),
  seed: z.number().int().optional(),
  num_predict: z.number().int().optional(),
  num_ctx: z.number().int().min(0).optional(),
  stop: z.union([z.string(), z.array(z.string()).max(16)]).optional(),
});
export type OllamaOptions = z.infer<typeof OllamaOptions>;

/** `format`: "json", or a JSON schema the output must satisfy. */
const Format = z.union([z.string(), z.record(z.string(), z.unknown())]);

const Images = z.array(z.string()).optional();

export const OllamaMessage = z.looseObject({
  role: z.enum(["system", "user", "assistant", "tool"]),
  content: z.string().nullable().optional(),
  images: Images.nullable(),
  tool_calls: z.array(z.unknown()).nullable().optional(),
  tool_name: z.string().optional(),
  thinking: z.string().optional(),
});
export type OllamaMessage = z.infer<typeof OllamaMessage>;

const common = {
  model: z.string().min(1),
  stream: z.boolean().nullable().optional(),
  format: Format.nullable().optional(),
  options: OllamaOptions.nullable().optional(),
  keep_alive: OllamaKeepAlive.nullable().optional(),
  think: z
    .union([z.boolean(), z.enum(["high", "medium", "low"])])
    .nullable()
    .optional(),
};

/** `POST /api/chat`. An empty `messages` loads the model (or, with keep_alive 0, unloads it). */
export const OllamaChatRequest = z.looseObject({
  ...common,
  messages: z.array(OllamaMessage).nullable().optional(),
  tools: z.array(z.unknown()).nullable().optional(),
  /**
   * An rbee extension (Ollama has none; its clients never send it): `auto` (default), `none`,
   * `required`, or `{name}` / `{function: {name}}` to force a call, as OpenAI's tool_choice.
   */
  tool_choice: z
    .union([
      z.enum(["auto", "none", "required"]),
      z.looseObject({ name: z.string().min(1) }),
      z.looseObject({ function: z.looseObject({ name: z.string().min(1) }) }),
    ])
    .optional(),
  parallel_tool_calls: z.boolean().optional(),
});
export type OllamaChatRequest = z.infer<typeof OllamaChatRequest>;

/** `POST /api/generate`. An empty `prompt` loads the model (or, with keep_alive 0, unloads it). */
export const OllamaGenerateRequest = z.looseObject({
  ...common,
  prompt: z.string().nullable().optional(),
  suffix: z.string().nullable().optional(),
  system: z.string().nullable().optional(),
  template: z.string().nullable().optional(),
  context: z.array(z.number()).nullable().optional(),
  raw: z.boolean().nullable().optional(),
  images: Images.nullable(),
});
export type OllamaGenerateRequest = z.infer<typeof OllamaGenerateRequest>;

export const OllamaEmbedRequest = z.looseObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(z.string()).max(2048)]),
  truncate: z.boolean().optional(),
  dimensions: z.number().int().min(1).optional(),
  options: OllamaOptions.nullable().optional(),
  keep_alive: OllamaKeepAlive.nullable().optional(),
});
export type OllamaEmbedRequest = z.infer<typeof OllamaEmbedRequest>;

/** The older `POST /api/embeddings`: one prompt, one vector. */
export const OllamaEmbeddingsRequest = z.looseObject({
  model: z.string().min(1),
  prompt: z.string(),
  options: OllamaOptions.nullable().optional(),
  keep_alive: OllamaKeepAlive.nullable().optional(),
});
export type OllamaEmbeddingsRequest = z.infer<typeof OllamaEmbeddingsRequest>;

/** `/api/show`, `/api/pull`, `/api/delete` name the model as `model` (or, in older clients, `name`). */
const name = {
  model: z.string().min(1).optional(),
  name: z.string().min(1).optional(),
};
const hasName = (r: { model?: string; name?: string }) => r.model !== undefined || r.name !== undefined;
const nameMissing = { message: "give the model's name", path: ["model"] };

export const OllamaShowRequest = z
  .looseObject({ ...name, verbose: z.boolean().optional() })
  .refine(hasName, nameMissing);
export const OllamaPullRequest = z
  .looseObject({ ...name, insecure: z.boolean().optional(), stream: z.boolean().nullable().optional() })
  .refine(hasName, nameMissing);
export const OllamaDeleteRequest = z.looseObject(name).refine(hasName, nameMissing);
