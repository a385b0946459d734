import { randomBytes } from "node:crypto";
import {
  type GeneratedImage,
  KeepAlive,
  keepAliveMs,
  MAX_IMAGES_PER_REQUEST,
  NotFoundError,
  ValidationError,
} from "@rbee/contract";
import type { HttpContext, Logger } from "@rbee/server-kit";
import { z } from "zod";
import type { InferenceRouter } from "../scheduler/inference-router.js";
import { readLenientBody } from "./lenient-body.js";

/** `POST /v1/images/generations`, OpenAI's shape, with rbee's extensions (seed, negative_prompt, steps). */
export const ImagesRequest = z.object({
  model: z.string().min(1, "name a model that generates images (GET /v1/models)"),
  prompt: z.string().min(1, "the prompt must not be empty"),
  n: z.number().int().min(1).max(MAX_IMAGES_PER_REQUEST).optional(),
  size: z
    .string()
    .regex(/^(\d+)x(\d+)$|^auto$/, "must be WIDTHxHEIGHT in pixels, such as 512x512, or auto")
    .optional(),
  response_format: z.enum(["b64_json", "url"]).optional(),
  output_format: z.enum(["png"], "rbee's image workers make PNG files: use png, or leave it out").optional(),
  stream: z.literal(false, "streamed images (partial images) are not served: leave stream out").optional(),
  seed: z.number().int().min(0).max(0xffff_ffff).optional(),
  negative_prompt: z.string().optional(),
  steps: z.number().int().min(1).max(200).optional(),
  keep_alive: KeepAlive.optional(),
  // OpenAI's own knobs of its models: taken, and left to the workflow
  quality: z.string().optional(),
  style: z.string().optional(),
  background: z.string().optional(),
  moderation: z.string().optional(),
  user: z.string().optional(),
});
export type ImagesRequest = z.infer<typeof ImagesRequest>;

/** The pixels of `size` ("512x512"), checked as image models need them; `auto` and none: the worker's default. */
export function parseSize(size: string | undefined): { width?: number; height?: number } {
  if (size === undefined || size === "auto") return {};
  const [w, h] = size.split("x").map(Number) as [number, number];
  for (const side of [w, h]) {
    if (side < 64 || side > 4096 || side % 8 !== 0) {
      throw new ValidationError(
        `size ${size}: each side must be 64 to 4096 pixels and a multiple of 8 (image models work in blocks of 8 pixels), such as 512x512 or 768x512`,
        "size",
      );
    }
  }
  return { width: w, height: h };
}

interface StoredImage {
  data: Buffer;
  mime: string;
  at: number;
}

/** How long an image answered as a URL stays there. */
export const IMAGE_URL_TTL_MS = 60 * 60 * 1000;

/**
 * Images answered as URLs (`response_format: url`), kept in the queen's memory for an hour, at most
 * `maxBytes` together (the oldest go first). The URL is the queen's own, behind its API keys.
 */
export class ImageStore {
  #images = new Map<string, StoredImage>();
  #bytes = 0;

  constructor(
    private readonly maxBytes = 256 * 1024 * 1024,
    private readonly ttlMs = IMAGE_URL_TTL_MS,
  ) {}

  put(data: Buffer, mime: string): string {
    this.#expire();
    const id = randomBytes(16).toString("hex");
    this.#images.set(id, { data, mime, at: Date.now() });
    this.#bytes += data.length;
    for (const [old, image] of this.#images) {
      if (this.#bytes <= this.maxBytes || old === id) break;
      this.#images.delete(old);
      this.#bytes -= image.data.length;
    }
    return id;
  }

  get(id: string): StoredImage | undefined {
    this.#expire();
    return this.#images.get(id);
  }

  #expire(): void {
    const now = Date.now();
    for (const [id, image] of this.#images) {
      if (now - image.at < this.ttlMs) break;
      this.#images.delete(id);
      this.#bytes -= image.data.length;
    }
  }
}

const EXTENSIONS: Record<string, string> = { "image/png": "png", "image/webp": "webp", "image/jpeg": "jpg" };

/** The OpenAI images route, and the files it answers as URLs. */
export class ImageRoutes {
  readonly store = new ImageStore();

  constructor(
    private readonly router: InferenceRouter,
    private readonly log: Logger,
  ) {}

  async generate(ctx: HttpContext): Promise<void> {
    const req = await readLenientBody(ctx, ImagesRequest, "image generation request", this.log);
    const size = parseSize(req.size);
    ctx.logFields.model = req.model;
    const res = await this.router.images(
      req.model,
      {
        prompt: req.prompt,
        n: req.n,
        seed: req.seed,
        negative_prompt: req.negative_prompt,
        steps: req.steps,
        ...size,
      },
      {
        signal: ctx.signal,
        admin: ctx.facts.admin,
        keepAliveMs: req.keep_alive === undefined ? undefined : keepAliveMs(req.keep_alive),
      },
    );
    const asUrl = (req.response_format ?? "url") === "url";
    ctx.send(200, {
      created: Math.floor(Date.now() / 1000),
      data: res.images.map((image) => (asUrl ? { url: this.#url(ctx, image) } : { b64_json: image.data })),
      // rbee's extension: what each image was made with
      rbee: { model: res.model, worker_id: res.workerId, seeds: res.images.map((i) => i.seed ?? null) },
    });
  }

  file(ctx: HttpContext): void {
    const name = ctx.params.file ?? "";
    const image = this.store.get(name.replace(/\.[a-z]+$/, ""));
    if (image === undefined) {
      throw new NotFoundError(
        `image '${name}' is not here: images answered as URLs are kept for an hour (and while the queen runs); ask for response_format b64_json to get the file in the answer`,
        "image_not_found",
      );
    }
    ctx.res.writeHead(200, {
      "content-type": image.mime,
      "content-length": image.data.length,
      "cache-control": "private, max-age=3600",
    });
    ctx.res.end(image.data);
  }

  #url(ctx: HttpContext, image: GeneratedImage): string {
    const id = this.store.put(Buffer.from(image.data, "base64"), image.mime_type);
    const host = ctx.header("host") ?? "127.0.0.1";
    const scheme = (ctx.req.socket as { encrypted?: boolean }).encrypted ? "https" : "http";
    return `${scheme}://${host}/v1/images/files/${id}.${EXTENSIONS[image.mime_type] ?? "png"}`;
  }
}
