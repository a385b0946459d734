import {
  type InferResponse,
  ModelNotFoundError,
  type TokenLogprob,
  type ToolCallEvent,
  toRbeeError,
} from "@rbee/contract";
import type { HttpContext, Logger, SseWriter } from "@rbee/server-kit";
import { linkSignals, randomHex } from "@rbee/server-kit";
import type { ClusterRegistry } from "../registry/cluster-registry.js";
import type { InferenceRouter, InferOptions, InferOutcome } from "../scheduler/inference-router.js";
import { readLenientBody } from "./lenient-body.js";
import { ChatCompletionRequest, CompletionRequest, EmbeddingsRequest } from "./schemas.js";
import {
  openaiFinishReason,
  type TranslatedInfer,
  translateChat,
  translateCompletion,
  translateEmbeddings,
} from "./translate.js";

type Kind = "chat" | "text";

/** Usage of the choices of one request: the prompt counted once, as OpenAI counts it for n > 1. */
function usage(responses: readonly InferResponse[]) {
  const first = responses[0];
  const prompt = first?.prompt_tokens ?? 0;
  const completion = responses.reduce((sum, r) => sum + r.tokens_generated, 0);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: first?.cached_tokens ?? 0 },
  };
}

/** The OpenAI-compatible routes: models, chat and text completions (streaming or not), embeddings. */
export class OpenAiRoutes {
  readonly #startedAt = Math.floor(Date.now() / 1000);

  constructor(
    private readonly router: InferenceRouter,
    private readonly registry: ClusterRegistry,
    private readonly log: Logger,
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
    const req = await readLenientBody(ctx, ChatCompletionRequest, "chat completion request", this.log);
    await this.#complete(ctx, "chat", translateChat(req));
  }

  async completions(ctx: HttpContext): Promise<void> {
    const req = await readLenientBody(ctx, CompletionRequest, "completion request", this.log);
    await this.#complete(ctx, "text", translateCompletion(req));
  }

  async embeddings(ctx: HttpContext): Promise<void> {
    const req = translateEmbeddings(await readLenientBody(ctx, EmbeddingsRequest, "embeddings request", this.log));
    const res = await this.router.embed(
      req.model,
      { input: req.input },
      { signal: ctx.signal, admin: ctx.facts.admin, keepAliveMs: req.keepAliveMs },
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
    const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomHex(12)}`;
    const created = Math.floor(Date.now() / 1000);
    const object = kind === "chat" ? "chat.completion" : "text_completion";
    ctx.logFields.model = t.model;
    if (t.n > 1) ctx.logFields.n = t.n;
    if (!t.stream) {
      const outcomes = await this.#inferAll(ctx, t, () => ({}));
      ctx.send(200, {
        id,
        object,
        created,
        model: t.model,
        system_fingerprint: null,
        choices: outcomes.map((o, index) => choice(kind, index, o.response, t.logprobs)),
        usage: usage(outcomes.map((o) => o.response)),
      });
      return;
    }
    await this.#stream(ctx, kind, t, id, created);
  }

  /**
   * Runs the request's `n` generations at once (n > 1 is n requests to the workers, seeded
   * seed, seed+1, ... when a seed is given so that the choices differ). The first failure cancels the rest.
   */
  async #inferAll(
    ctx: HttpContext,
    t: TranslatedInfer,
    callbacks: (index: number) => Pick<InferOptions, "onToken" | "onToolCall">,
  ): Promise<InferOutcome[]> {
    // one generation, the common case: no signal of its own
    if (t.n === 1) return [await this.#inferOne(ctx, t, 0, ctx.signal, callbacks)];
    const failed = new AbortController();
    const link = linkSignals(ctx.signal, failed.signal);
    try {
      const one = (index: number) =>
        this.#inferOne(ctx, t, index, link.signal, callbacks).catch((err: unknown) => {
          failed.abort(err);
          throw err;
        });
      const settled = await Promise.allSettled(Array.from({ length: t.n }, (_, i) => one(i)));
      const first = settled.find((r) => r.status === "rejected");
      if (first) {
        // the failure that aborted the others, not one of the aborts it caused
        throw failed.signal.aborted ? failed.signal.reason : (first as PromiseRejectedResult).reason;
      }
      return settled.map((r) => (r as PromiseFulfilledResult<InferOutcome>).value);
    } finally {
      link.unlink();
    }
  }

  /** Choice `index` of the request: its seed is the request's + index (when there is one), so that choices differ. */
  #inferOne(
    ctx: HttpContext,
    t: TranslatedInfer,
    index: number,
    signal: AbortSignal,
    callbacks: (index: number) => Pick<InferOptions, "onToken" | "onToolCall">,
  ): Promise<InferOutcome> {
    const seed = t.infer.seed;
    const infer = index === 0 || seed === undefined ? t.infer : { ...t.infer, seed: (seed + index) >>> 0 };
    return this.router.infer(t.model, infer, {
      signal,
      admin: ctx.facts.admin,
      keepAliveMs: t.keepAliveMs,
      ...callbacks(index),
    });
  }

  /**
   * Streams in OpenAI's chunk format. The response turns into a stream at the first token, so a
   * failure before it (unknown model, nothing fits) is still a plain JSON error with its status.
   */
  async #stream(ctx: HttpContext, kind: Kind, t: TranslatedInfer, id: string, created: number): Promise<void> {
    const object = kind === "chat" ? "chat.completion.chunk" : "text_completion";
    const extra = t.includeUsage ? { usage: null } : {};
    const chunk = (c: Record<string, unknown>) => ({
      id,
      object,
      created,
      model: t.model,
      system_fingerprint: null,
      choices: [c],
      ...extra,
    });
    let sse: SseWriter | undefined;
    const opened = new Set<number>();
    const open = (index: number): SseWriter => {
      sse ??= ctx.sse();
      if (kind === "chat" && !opened.has(index)) {
        opened.add(index);
        void sse.send(
          undefined,
          chunk({ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }),
        );
      }
      return sse;
    };
    // a chat token without logprobs, the hot path: the chunk's JSON around its text, made once
    const head = JSON.stringify(chunk({ index: 0 })).replace(/"index":0}\].*$/, '"index":');
    const tail = `,"logprobs":null,"finish_reason":null}]${t.includeUsage ? ',"usage":null' : ""}}`;
    const offsets = new Map<number, number>();
    const piece = (index: number, text: string, logprobs: TokenLogprob[] | undefined) => {
      if (kind === "chat" && !t.logprobs) return `${head}${index},"delta":{"content":${JSON.stringify(text)}}${tail}`;
      if (kind === "chat")
        return chunk({
          index,
          delta: { content: text },
          logprobs: t.logprobs ? { content: (logprobs ?? []).map(chatLogprob), refusal: null } : null,
          finish_reason: null,
        });
      const offset = offsets.get(index) ?? 0;
      offsets.set(index, offset + text.length);
      return chunk({
        index,
        text,
        logprobs: t.logprobs ? legacyLogprobs(logprobs ?? [], offset) : null,
        finish_reason: null,
      });
    };
    const toolPiece = (index: number, p: ToolCallEvent) =>
      chunk({
        index,
        delta: {
          tool_calls: [
            p.id !== undefined
              ? { index: p.index, id: p.id, type: "function", function: { name: p.name ?? "", arguments: p.arguments } }
              : { index: p.index, function: { arguments: p.arguments } },
          ],
        },
        logprobs: null,
        finish_reason: null,
      });
    try {
      const outcomes = await this.#inferAll(ctx, t, (index) => ({
        onToken: (text, _i, logprobs) => open(index).write(undefined, piece(index, text, logprobs)),
        onToolCall: (p) => open(index).write(undefined, toolPiece(index, p)),
      }));
      for (const [index, { response }] of outcomes.entries()) {
        const w = open(index);
        const finish_reason = openaiFinishReason(response.finish_reason);
        await w.send(
          undefined,
          kind === "chat"
            ? chunk({ index, delta: {}, logprobs: null, finish_reason })
            : chunk({ index, text: "", logprobs: null, finish_reason }),
        );
      }
      const w = open(0);
      if (t.includeUsage)
        await w.send(undefined, {
          id,
          object,
          created,
          model: t.model,
          system_fingerprint: null,
          choices: [],
          usage: usage(outcomes.map((o) => o.response)),
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

/** One choice of a reply that is not streamed. */
function choice(kind: Kind, index: number, r: InferResponse, withLogprobs: boolean) {
  const finish_reason = openaiFinishReason(r.finish_reason);
  if (kind === "text")
    return {
      index,
      text: r.text,
      logprobs: withLogprobs ? legacyLogprobs(r.logprobs ?? [], 0) : null,
      finish_reason,
    };
  const calls = r.tool_calls ?? [];
  return {
    index,
    message: {
      role: "assistant",
      content: calls.length > 0 && r.text === "" ? null : r.text,
      refusal: null,
      ...(calls.length > 0
        ? {
            tool_calls: calls.map((c) => ({
              id: c.id,
              type: "function",
              function: { name: c.name, arguments: c.arguments },
            })),
          }
        : {}),
    },
    logprobs: withLogprobs ? { content: (r.logprobs ?? []).map(chatLogprob), refusal: null } : null,
    finish_reason,
  };
}

/** A token's logprobs in the chat completions' shape. */
function chatLogprob(l: TokenLogprob) {
  return {
    token: l.token,
    logprob: l.logprob,
    bytes: l.bytes,
    top_logprobs: l.top_logprobs.map((a) => ({ token: a.token, logprob: a.logprob, bytes: a.bytes })),
  };
}

/** Logprobs in the legacy completions' shape; `offset` is where the first token's text starts. */
function legacyLogprobs(list: readonly TokenLogprob[], offset: number) {
  const text_offset: number[] = [];
  let at = offset;
  for (const l of list) {
    text_offset.push(at);
    at += l.token.length;
  }
  return {
    tokens: list.map((l) => l.token),
    token_logprobs: list.map((l) => l.logprob),
    top_logprobs: list.map((l) => Object.fromEntries(l.top_logprobs.map((a) => [a.token, a.logprob]))),
    text_offset,
  };
}
