import { z } from "zod";

/**
 * llama-server's replies, as rbee reads them: only the fields it uses, leniently (extra fields
 * pass, a missing optional one is undefined). Field names from llama.cpp's tools/server.
 */

/** One SSE chunk of a streamed `/completion`: partial (`stop: false`) or final (`stop: true`). */
export const CompletionChunk = z.looseObject({
  content: z.string().optional(),
  stop: z.boolean().optional(),
  /** Tokens generated so far (partial) or in all (final). */
  tokens_predicted: z.number().int().nonnegative().optional(),
  /** Prompt tokens of the request. */
  tokens_evaluated: z.number().int().nonnegative().optional(),
  /** eos | word | limit | none */
  stop_type: z.string().optional(),
  stopping_word: z.string().optional(),
  truncated: z.boolean().optional(),
  timings: z
    .looseObject({
      /** Prompt tokens reused from the slot's cache. */
      cache_n: z.number().int().nonnegative().optional(),
      prompt_n: z.number().int().nonnegative().optional(),
      predicted_n: z.number().int().nonnegative().optional(),
    })
    .optional(),
  /** A mid-stream error: `data: {"error": {...}}`. */
  error: z.unknown().optional(),
});
export type CompletionChunk = z.infer<typeof CompletionChunk>;

/** `POST /apply-template`: the chat formatted with the model's template, generation prompt added. */
export const ApplyTemplateReply = z.looseObject({ prompt: z.string() });

/** `GET /props`: what the running server is. */
export const PropsReply = z.looseObject({
  build_info: z.string().optional(),
  total_slots: z.number().int().positive().optional(),
  model_path: z.string().optional(),
  default_generation_settings: z.looseObject({ n_ctx: z.number().int().positive().optional() }).optional(),
});

/** `POST /embeddings` (native): one entry per input; `embedding` is [vector] with pooling, per-token vectors without. */
export const EmbeddingsReply = z.array(
  z.looseObject({
    index: z.number().int().nonnegative().optional(),
    embedding: z.array(z.array(z.number())),
  }),
);

/** `POST /tokenize`. */
export const TokenizeReply = z.looseObject({ tokens: z.array(z.unknown()) });
