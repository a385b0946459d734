import { z } from "zod";

/** How many texts one embeddings request may carry (OpenAI's own limit). */
export const MAX_EMBED_INPUTS = 2048;

/** `POST /v1/embed` on a worker with the `embeddings` capability. */
export const EmbedRequest = z.strictObject({
  model: z.string().min(1).optional(),
  input: z.union([
    z.string(),
    z.array(z.string()).min(1).max(MAX_EMBED_INPUTS, `at most ${MAX_EMBED_INPUTS} inputs per request`),
  ]),
});
export type EmbedRequest = z.infer<typeof EmbedRequest>;

export const EmbedResponse = z.looseObject({
  embeddings: z.array(z.array(z.number())),
  prompt_tokens: z.number().int().nonnegative(),
  model: z.string().optional(),
});
export type EmbedResponse = z.infer<typeof EmbedResponse>;
