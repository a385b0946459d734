import { randomBytes } from "node:crypto";
import { type InferResponse, ModelNotFoundError, toRbeeError } from "@rbee/contract";
import type { HttpContext, SseWriter } from "@rbee/server-kit";
import type { ClusterRegistry } from "../registry/cluster-registry.js";
import type { InferenceRouter } from "../scheduler/inference-router.js";
import { ChatCompletionRequest, CompletionRequest, EmbeddingsRequest } from "./schemas.js";
import {
  openaiFinishReason,
  type TranslatedInfer,
  translateChat,
  translateCompletion,
  translateEmbeddings,
} from "./translate.js";

/** Chat histories and prompts can be long. */
const BODY_LIMIT = 16 * 1024 * 1024;

type Kind = "chat" | "text";

function usage(r: InferResponse) {
  return {
    prompt_tokens: r.prompt_tokens,
    completion_tokens: r.tokens_generated,
    total_tokens: r.prompt_tokens + r.tokens_generated,
    prompt_tokens_details: { cached_tokens: r.cached_tokens ?? 0 },
  };
}

/** The OpenAI-compatible routes: models, chat and text completions (streaming or not), embeddings. */
export class OpenAiRoutes {
  readonly #startedAt = Math.floor(Date.now() / 1000);

  constructor(
    private readonly router: InferenceRouter,
    private readonly registry: ClusterRegistry,
  ) {}

  models(ctx: HttpContext): void {
    ctx.send(200, { object: "list", data: this.registry.servableModels().map((id) => this.#model(id)) });
  }

  model(ctx: HttpContext): void {
    const id = ctx.params.model ?? "";
    const found = this.registry.servableModels().find((m) => m.toLowerCase() === id.toLowerCase());
    if (!found) throw new ModelNotFoundError(id);
    ctx.send(200, this.#model(found));
  }

  async chat(ctx: HttpContext): Promise<void> {
    const req = await ctx.json(ChatCompletionRequest, "chat completion request", BODY_LIMIT);
    await this.#complete(ctx, "chat", translateChat(req));
  }

  async completions(ctx: HttpContext): Promise<void> {
    const req = await ctx.json(CompletionRequest, "completion request", BODY_LIMIT);
    await this.#complete(ctx, "text", translateCompletion(req));
  }

  async embeddings(ctx: HttpContext): Promise<void> {
    const req = translateEmbeddings(await ctx.json(EmbeddingsRequest, "embeddings request", BODY_LIMIT));
    const res = await this.router.embed(
      req.model,
      { input: req.input },
      { signal: ctx.signal, keepAliveMs: req.keepAliveMs },
    );
    ctx.send(200, {
      object: "list",
      model: req.model,
      data: res.embeddings.map((vector, index) => ({
        object: "embedding",
        index,
        embedding: req.base64 ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector,
      })),
      usage: { prompt_tokens: res.prompt_tokens, total_tokens: res.prompt_tokens },
    });
  }

  #model(id: string) {
    return { id, object: "model", created: this.#startedAt, owned_by: "rbee" };
  }

  async #complete(ctx: HttpContext, kind: Kind, t: TranslatedInfer): Promise<void> {
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomBytes(12).toString("hex")}`;
    const created = Math.floor(Date.now() / 1000);
    const object = kind === "chat" ? "chat.completion" : "text_completion";
    ctx.logFields.model = t.model;
    if (!t.stream) {
      const { response } = await this.router.infer(t.model, t.infer, {
        signal: ctx.signal,
        keepAliveMs: t.keepAliveMs,
      });
      const finish_reason = openaiFinishReason(response.finish_reason);
      const choice =
        kind === "chat"
          ? {
              index: 0,
              message: { role: "assistant", content: response.text, refusal: null },
              logprobs: null,
              finish_reason,
            }
          : { index: 0, text: response.text, logprobs: null, finish_reason };
      ctx.send(200, {
        id,
        object,
        created,
        model: t.model,
        system_fingerprint: null,
        choices: [choice],
        usage: usage(response),
      });
      return;
    }
    await this.#stream(ctx, kind, t, id, created);
  }

  /**
   * Streams in OpenAI's chunk format. The response turns into a stream at the first token, so a
   * failure before it (unknown model, nothing fits) is still a plain JSON error with its status.
   */
  async #stream(ctx: HttpContext, kind: Kind, t: TranslatedInfer, id: string, created: number): Promise<void> {
    const object = kind === "chat" ? "chat.completion.chunk" : "text_completion";
    const extra = t.includeUsage ? { usage: null } : {};
    const chunk = (choice: Record<string, unknown>) => ({
      id,
      object,
      created,
      model: t.model,
      system_fingerprint: null,
      choices: [choice],
      ...extra,
    });
    let sse: SseWriter | undefined;
    const open = (): SseWriter => {
      if (sse) return sse;
      sse = ctx.sse();
      if (kind === "chat")
        void sse.send(
          undefined,
          chunk({ index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }),
        );
      return sse;
    };
    const piece = (text: string) =>
      kind === "chat"
        ? chunk({ index: 0, delta: { content: text }, logprobs: null, finish_reason: null })
        : chunk({ index: 0, text, logprobs: null, finish_reason: null });
    try {
      const { response } = await this.router.infer(t.model, t.infer, {
        signal: ctx.signal,
        keepAliveMs: t.keepAliveMs,
        onToken: (text) =>
          open()
            .send(undefined, piece(text))
            .then(() => undefined),
      });
      const w = open();
      const finish_reason = openaiFinishReason(response.finish_reason);
      await w.send(
        undefined,
        kind === "chat"
          ? chunk({ index: 0, delta: {}, logprobs: null, finish_reason })
          : chunk({ index: 0, text: "", logprobs: null, finish_reason }),
      );
      if (t.includeUsage)
        await w.send(undefined, {
          id,
          object,
          created,
          model: t.model,
          system_fingerprint: null,
          choices: [],
          usage: usage(response),
        });
      await w.send(undefined, "[DONE]");
    } catch (err) {
      if (!sse) throw err;
      // mid-stream: OpenAI's clients raise a data chunk with an `error` as an API error
      const e = toRbeeError(err);
      ctx.logFields.error_code = e.code;
      await sse.send(undefined, e.toBody());
    }
  }
}
