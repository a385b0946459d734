import { z } from "zod";

/**
 * Ollama's replies, as rbee reads them: only the fields it uses, leniently (extra fields pass).
 * Field names from Ollama's docs/api.md and api/types.go.
 */

/** `GET /api/version`. */
export const VersionReply = z.looseObject({ version: z.string() });

/** One model of `GET /api/ps` (a loaded model): `size_vram` bytes in GPU memory, `expires_at` when it unloads. */
export const ProcessModel = z.looseObject({
  name: z.string(),
  model: z.string().optional(),
  size: z.number().nonnegative().optional(),
  size_vram: z.number().nonnegative().optional(),
  expires_at: z.string().optional(),
});
export const PsReply = z.looseObject({ models: z.array(ProcessModel).nullable().optional() });

/** `GET /api/tags`: the models pulled on that Ollama. */
export const TagsReply = z.looseObject({
  models: z
    .array(z.looseObject({ name: z.string(), size: z.number().optional() }))
    .nullable()
    .optional(),
});

/** `POST /api/show`. */
export const ShowReply = z.looseObject({
  details: z.looseObject({ family: z.string().optional(), parameter_size: z.string().optional() }).optional(),
  model_info: z.record(z.string(), z.unknown()).optional(),
  capabilities: z.array(z.string()).optional(),
});

/** One line of the NDJSON stream of `/api/generate` (`response`) or `/api/chat` (`message.content`). */
export const GenerateChunk = z.looseObject({
  response: z.string().optional(),
  message: z.looseObject({ content: z.string().optional() }).optional(),
  done: z.boolean().optional(),
  /** stop | length | load | unload */
  done_reason: z.string().optional(),
  prompt_eval_count: z.number().int().nonnegative().optional(),
  eval_count: z.number().int().nonnegative().optional(),
  /** A mid-stream error: `{"error": "..."}`. */
  error: z.string().optional(),
});
export type GenerateChunk = z.infer<typeof GenerateChunk>;

/** One line of the NDJSON stream of `/api/pull`. */
export const PullProgress = z.looseObject({
  status: z.string().optional(),
  digest: z.string().optional(),
  total: z.number().nonnegative().optional(),
  completed: z.number().nonnegative().optional(),
  error: z.string().optional(),
});

/** `POST /api/embed`. */
export const EmbedReply = z.looseObject({
  embeddings: z.array(z.array(z.number())),
  prompt_eval_count: z.number().int().nonnegative().optional(),
});
