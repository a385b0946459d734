import { z } from "zod";

/** `POST /v1/embed` on a worker with the `embeddings` capability. */
export const EmbedRequest = z.strictObject({
  model: z.string().min(1).optional(),
  input: z.union([z.string(), z.array(z.string()).min(1).max(2048)]),
});
export type EmbedRequest = z.infer<typeof EmbedRequest>;

export const EmbedResponse = z.looseObject({
  embeddings: z.array(z.array(z.number())),
  prompt_tokens: z.number().int().nonnegative(),
  model: z.string().optional(),
});
export type EmbedResponse = z.infer<typeof EmbedResponse>;
