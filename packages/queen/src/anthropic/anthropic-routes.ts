import { toRbeeError } from "@rbee/contract";
import type { HttpContext, Logger, SseWriter } from "@rbee/server-kit";
import { randomHex } from "@rbee/server-kit";
import { noteIgnoredFields } from "../http/ignored-fields.js";
import type { InferenceRouter } from "../scheduler/inference-router.js";
import { anthropicErrorBody } from "./anthropic-errors.js";
import { CountTokensRequest, MessagesRequest } from "./anthropic-schemas.js";
import { inputOf, toolsOf } from "./anthropic-tools.js";
import { chatOf, stopReason, usageOf } from "./anthropic-translate.js";

/** Chat histories (an agent's especially) can be long. */
const BODY_LIMIT = 32 * 1024 * 1024;

/**
 * Anthropic's Messages API (`/v1/messages`, `/v1/messages/count_tokens`), translated onto the router
 * like the OpenAI routes. Streams use Anthropic's event types; errors use its shape (anthropic-errors.ts).
 */
export class AnthropicRoutes {
  constructor(
    private readonly router: InferenceRouter,
    private readonly log: Logger,
  ) {}

  async messages(ctx: HttpContext): Promise<void> {
    const req = await ctx.json(MessagesRequest, "messages request", BODY_LIMIT);
    noteIgnoredFields(ctx, this.log, MessagesRequest, req);
    const messages = chatOf(req);
    const infer = {
      messages,
      max_tokens: req.max_tokens,
      temperature: req.temperature,
      top_p: req.top_p,
      top_k: req.top_k,
      stop: req.stop_sequences?.filter((s) => s !== ""),
      json_schema: req.output_config?.format?.schema,
      ...toolsOf(req),
    };
    if (infer.stop?.length === 0) infer.stop = undefined;
    const id = `msg_${randomHex(12)}`;
    ctx.logFields.model = req.model;
    ctx.res.setHeader("request-id", ctx.requestId);
    if (!req.stream) {
      const { response } = await this.router.infer(req.model, infer, { signal: ctx.signal, admin: ctx.facts.admin });
      ctx.send(200, {
        id,
        type: "message",
        role: "assistant",
        model: req.model,
        content: [
          ...(response.text === "" ? [] : [{ type: "text", text: response.text }]),
          ...(response.tool_calls ?? []).map((c) => ({ type: "tool_use", id: c.id, name: c.name, input: inputOf(c) })),
        ],
        ...stopReason(response),
        stop_details: null,
        usage: usageOf(response),
      });
      return;
    }
    // The stream starts at the first token or tool call, so that a failure before it (an unknown
    // model, nothing fits) is a plain error with its status, which the SDKs raise as their own classes.
    let sse: SseWriter | undefined;
    /** The content block open now: its index and kind. */
    let block: { index: number; kind: "text" | "tool_use" } | undefined;
    let blocks = 0;
    const open = (): SseWriter => {
      if (sse) return sse;
      sse = ctx.sse();
      void sse.send("message_start", {
        type: "message_start",
        message: {
          id,
          type: "message",
          role: "assistant",
          model: req.model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          stop_details: null,
          // the prompt's tokens are counted by the worker and known at the end: message_delta has them
          usage: { input_tokens: 0, output_tokens: 0 },
        },
      });
      return sse;
    };
    const closeBlock = (w: SseWriter) => {
      if (block) void w.send("content_block_stop", { type: "content_block_stop", index: block.index });
      block = undefined;
    };
    const startBlock = (w: SseWriter, kind: "text" | "tool_use", contentBlock: Record<string, unknown>) => {
      closeBlock(w);
      block = { index: blocks++, kind };
      void w.send("content_block_start", {
        type: "content_block_start",
        index: block.index,
        content_block: contentBlock,
      });
      if (block.index === 0) void w.send("ping", { type: "ping" });
      return block.index;
    };
    try {
      const { response } = await this.router.infer(req.model, infer, {
        signal: ctx.signal,
        admin: ctx.facts.admin,
        onToken: (text) => {
          const w = open();
          const index = block?.kind === "text" ? block.index : startBlock(w, "text", { type: "text", text: "" });
          return w.write("content_block_delta", {
            type: "content_block_delta",
            index,
            delta: { type: "text_delta", text },
          });
        },
        onToolCall: (piece) => {
          const w = open();
          let index = block?.index ?? -1;
          if (piece.id !== undefined || block?.kind !== "tool_use")
            index = startBlock(w, "tool_use", {
              type: "tool_use",
              id: piece.id ?? `toolu_${id}_${piece.index}`,
              name: piece.name ?? "",
              input: {},
            });
          if (piece.arguments === "") return undefined;
          return w.write("content_block_delta", {
            type: "content_block_delta",
            index,
            delta: { type: "input_json_delta", partial_json: piece.arguments },
          });
        },
      });
      const w = open();
      closeBlock(w);
      await w.send("message_delta", {
        type: "message_delta",
        delta: { ...stopReason(response), stop_details: null },
        usage: usageOf(response),
      });
      await w.send("message_stop", { type: "message_stop" });
    } catch (err) {
      if (!sse) throw err;
      const e = toRbeeError(err);
      ctx.logFields.error_code = e.code;
      await sse.send("error", anthropicErrorBody(e));
    }
  }

  /**
   * Counts the prompt's tokens exactly as the model sees them (its chat template and tokenizer), by
   * asking a worker for one greedy token and reading the prompt_tokens it reports. The worker
   * contract has no tokenize call, and this works with every worker type; its cost is one prompt
   * evaluation, which the worker's prefix cache then reuses for the real request.
   */
  async countTokens(ctx: HttpContext): Promise<void> {
    const req = await ctx.json(CountTokensRequest, "count_tokens request", BODY_LIMIT);
    noteIgnoredFields(ctx, this.log, CountTokensRequest, req);
    // with the tools described as the model sees them, but none called: one token of text
    const tools = toolsOf(req);
    const { response } = await this.router.infer(
      req.model,
      {
        messages: chatOf(req),
        ...(tools.tools ? { tools: tools.tools, tool_choice: "none" as const } : {}),
        max_tokens: 1,
        temperature: 0,
      },
      { signal: ctx.signal, admin: ctx.facts.admin },
    );
    ctx.send(200, { input_tokens: response.prompt_tokens });
  }
}
