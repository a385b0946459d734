import { z } from "zod";
import { MAX_IMAGES_PER_REQUEST } from "./protocol.js";

/** A value of a workflow's named input: text, a number or a switch. */
export const WorkflowInputValue = z.union([z.string(), z.number(), z.boolean()]);
export type WorkflowInputValue = z.infer<typeof WorkflowInputValue>;

const side = (what: string) =>
  z
    .number()
    .int()
    .min(64, `the ${what} must be at least 64 pixels`)
    .max(4096, `the ${what} must be at most 4096 pixels`)
    .refine((n) => n % 8 === 0, `the ${what} must be a multiple of 8 (image models work in blocks of 8 pixels)`);

/**
 * `POST /v1/images` on a worker with the `image-generation` capability: generate `n` images from a
 * text prompt. The worker fills its workflow's named inputs (prompt, negative prompt, size, steps,
 * seed, model) from these fields, and any other named input from `inputs`. Unknown fields are refused.
 */
export const ImageRequest = z.strictObject({
  model: z
    .string()
    .min(1)
    .optional()
    .describe("checked against the worker's model when given (an image model: a checkpoint name)"),
  prompt: z.string().min(1, "the prompt must not be empty").describe("what the image shows"),
  negative_prompt: z.string().optional().describe("what the image must not show"),
  n: z
    .number()
    .int()
    .min(1)
    .max(MAX_IMAGES_PER_REQUEST)
    .optional()
    .describe(`images to generate (default 1, at most ${MAX_IMAGES_PER_REQUEST}); image i is seeded seed + i`),
  width: side("width").optional().describe("pixels (default: the worker's, 512 for the default workflow)"),
  height: side("height").optional().describe("pixels (default: the worker's, 512 for the default workflow)"),
  steps: z.number().int().min(1).max(200).optional().describe("sampling steps (default: the worker's workflow's)"),
  seed: z
    .number()
    .int()
    .min(0)
    .max(0xffff_ffff)
    .optional()
    .describe("makes the image repeatable; default a random one, reported back"),
  inputs: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "an input name is a word"), WorkflowInputValue)
    .optional()
    .describe("values for the other named inputs of the worker's workflow (a workflow file with {{name}} inputs)"),
  stream: z.boolean().optional().describe("answer as Server-Sent Events: progress..., then done or error"),
});
export type ImageRequest = z.infer<typeof ImageRequest>;

/** One generated image. */
export const GeneratedImage = z.looseObject({
  /** The image file, base64. */
  data: z.string().min(1),
  mime_type: z.string().describe("image/png, image/webp, ..."),
  seed: z.number().int().nonnegative().optional().describe("the seed it was generated with"),
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
});
export type GeneratedImage = z.infer<typeof GeneratedImage>;

/** The reply to `POST /v1/images`, and the data of its stream's `done` event. */
export const ImageResponse = z.looseObject({
  images: z.array(GeneratedImage).min(1),
  duration_ms: z.number().nonnegative().describe("from accepting the request to the last image, queueing included"),
  model: z.string().optional(),
  /** The engine's own id of the work (ComfyUI's prompt_id), for its logs. */
  engine_job_id: z.string().optional(),
});
export type ImageResponse = z.infer<typeof ImageResponse>;

/**
 * Data of the image stream's `progress` event: where the generation is. `fraction` runs from 0 to 1
 * over the whole request; `step`/`steps` are the sampler's when the engine reports them.
 */
export const ImageProgressEvent = z.looseObject({
  fraction: z.number().min(0).max(1),
  step: z.number().int().nonnegative().optional(),
  steps: z.number().int().positive().optional(),
  /** Which image of the request, from 0. */
  image: z.number().int().nonnegative().optional(),
  /** What the engine is doing, in words ("KSampler", "VAEDecode", "queued"). */
  stage: z.string().optional(),
});
export type ImageProgressEvent = z.infer<typeof ImageProgressEvent>;
