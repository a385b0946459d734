import {
  type ChatMessage,
  type InferRequest,
  type InferResponse,
  KeepAlive,
  keepAliveMs,
  type ToolCall,
  type ToolChoice,
  type ToolDefinition,
  toRbeeError,
  ValidationError,
} from "@rbee/contract";
import type { HttpContext, Logger, SseWriter } from "@rbee/server-kit";
import { randomHex } from "@rbee/server-kit";
import { z } from "zod";
import type { InferenceRouter } from "../scheduler/inference-router.js";
import { readLenientBody } from "./lenient-body.js";
import { contentText } from "./translate.js";

/**
 * The subset of OpenAI's Responses API (`POST /v1/responses`) that the official clients'
 * `responses.create` uses: text or message input, instructions, function tools, function call
 * outputs in the input, text.format (json_schema), streaming events. Nothing is stored: a
 * `previous_response_id` is refused (send the whole conversation as `input`).
 */

const nullableOptional = <T extends z.ZodType>(t: T) => t.nullable().optional();

const InputContent = z.union([z.string(), z.array(z.looseObject({ type: z.string(), text: z.string().optional() }))]);

const InputItem = z.union([
  z.looseObject({
    type: z.literal("message").optional(),
    role: z.enum(["user", "system", "developer", "assistant"]),
    content: InputContent,
  }),
  z.looseObject({
    type: z.literal("function_call"),
    call_id: z.string().min(1),
    name: z.string().min(1),
    arguments: z.string(),
  }),
  z.looseObject({ type: z.literal("function_call_output"), call_id: z.string().min(1), output: z.unknown() }),
  z.looseObject({ type: z.literal("reasoning") }),
]);

const FunctionTool = z.looseObject({
  type: z.literal("function"),
  name: z.string().min(1),
  description: nullableOptional(z.string()),
  parameters: nullableOptional(z.record(z.string(), z.unknown())),
  strict: nullableOptional(z.boolean()),
});

const TextFormat = z.discriminatedUnion("type", [
  z.looseObject({ type: z.literal("text") }),
  z.looseObject({ type: z.literal("json_object") }),
  z.looseObject({
    type: z.literal("json_schema"),
    name: z.string().optional(),
    schema: z.record(z.string(), z.unknown()),
  }),
]);

export const ResponsesRequest = z.object({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(InputItem).min(1)]),
  instructions: nullableOptional(z.string()),
  max_output_tokens: nullableOptional(z.number().int().min(1)),
  temperature: nullableOptional(z.number().min(0).max(2)),
  top_p: nullableOptional(z.number().min(0).max(1)),
  stream: nullableOptional(z.boolean()),
  tools: nullableOptional(z.array(z.looseObject({ type: z.string() })).max(128)),
  tool_choice: nullableOptional(
    z.union([z.enum(["auto", "none", "required"]), z.looseObject({ type: z.literal("function"), name: z.string() })]),
  ),
  parallel_tool_calls: nullableOptional(z.boolean()),
  text: nullableOptional(z.looseObject({ format: TextFormat.optional() })),
  previous_response_id: nullableOptional(z.string()),
  store: nullableOptional(z.boolean()),
  metadata: nullableOptional(z.record(z.string(), z.string())),
  user: nullableOptional(z.string()),
  truncation: nullableOptional(z.enum(["auto", "disabled"])),
  reasoning: nullableOptional(z.looseObject({})),
  include: nullableOptional(z.array(z.string())),
  // extensions (llama.cpp server, Ollama)
  seed: z.number().int().optional(),
  top_k: z.number().int().min(0).optional(),
  min_p: z.number().min(0).max(1).optional(),
  keep_alive: KeepAlive.optional(),
});
export type ResponsesRequest = z.infer<typeof ResponsesRequest>;

/** The request in the worker contract's terms. */
export function translateResponses(req: ResponsesRequest): Omit<InferRequest, "model" | "stream"> {
  if (req.previous_response_id)
    throw new ValidationError(
      "previous_response_id needs stored responses, and rbee stores none; send the whole conversation as input",
      "previous_response_id",
    );
  const messages: ChatMessage[] = [];
  if (req.instructions) messages.push({ role: "system", content: req.instructions });
  if (typeof req.input === "string") messages.push({ role: "user", content: req.input });
  else {
    for (const [i, item] of req.input.entries()) {
      if (item.type === "reasoning") continue;
      if (item.type === "function_call") {
        const call: ToolCall = { id: item.call_id, name: item.name, arguments: item.arguments };
        const last = messages.at(-1);
        // consecutive calls are one assistant turn
        if (last?.role === "assistant" && last.tool_calls) last.tool_calls.push(call);
        else messages.push({ role: "assistant", content: "", tool_calls: [call] });
      } else if (item.type === "function_call_output") {
        const output = typeof item.output === "string" ? item.output : JSON.stringify(item.output);
        messages.push({ role: "tool", content: output, tool_call_id: item.call_id });
      } else {
        const m = item as { role: "user" | "system" | "developer" | "assistant"; content: unknown };
        messages.push({
          role: m.role === "developer" ? "system" : m.role,
          content: contentText(m.content, `input[${i}].content`),
        });
      }
    }
  }
  if (messages.length === 0) throw new ValidationError("input has no messages", "input");
  const tools: ToolDefinition[] = [];
  for (const [i, t] of (req.tools ?? []).entries()) {
    const f = FunctionTool.safeParse(t);
    if (!f.success)
      throw new ValidationError(
        `tools[${i}] is a '${t.type}' tool; rbee serves function tools only (type 'function' with a name)`,
        `tools[${i}]`,
      );
    tools.push({
      name: f.data.name,
      ...(f.data.description ? { description: f.data.description } : {}),
      ...(f.data.parameters ? { parameters: f.data.parameters } : {}),
    });
  }
  const choice = req.tool_choice ?? undefined;
  let tool_choice: ToolChoice | undefined;
  if (typeof choice === "string") tool_choice = choice;
  else if (choice) {
    if (!tools.some((t) => t.name === choice.name))
      throw new ValidationError(`tool_choice names '${choice.name}', which is not one of the tools`, "tool_choice");
    tool_choice = { name: choice.name };
  }
  const format = req.text?.format;
  const json_schema =
    format?.type === "json_schema"
      ? (format.schema as Record<string, unknown>)
      : format?.type === "json_object"
        ? { type: "object" }
        : undefined;
  return {
    messages,
    max_tokens: req.max_output_tokens ?? undefined,
    temperature: req.temperature ?? undefined,
    top_p: req.top_p ?? undefined,
    top_k: req.top_k,
    min_p: req.min_p,
    seed: req.seed === undefined ? undefined : Number(BigInt.asUintN(32, BigInt(req.seed))),
    json_schema,
    ...(tools.length > 0 ? { tools } : {}),
    ...(tools.length > 0 && tool_choice !== undefined ? { tool_choice } : {}),
    ...(req.parallel_tool_calls === false ? { parallel_tool_calls: false } : {}),
  };
}

type OutputItem =
  | {
      type: "message";
      id: string;
      status: "in_progress" | "completed" | "incomplete";
      role: "assistant";
      content: Array<{ type: "output_text"; text: string; annotations: []; logprobs: [] }>;
    }
  | {
      type: "function_call";
      id: string;
      call_id: string;
      name: string;
      arguments: string;
      status: "in_progress" | "completed";
    };

const newId = (prefix: string) => `${prefix}_${randomHex(12)}`;

/** `POST /v1/responses`, streamed or not. */
export class ResponsesRoute {
  constructor(
    private readonly router: InferenceRouter,
    private readonly log: Logger,
  ) {}

  async create(ctx: HttpContext): Promise<void> {
    const req = await readLenientBody(ctx, ResponsesRequest, "responses request", this.log);
    const infer = translateResponses(req);
    ctx.logFields.model = req.model;
    const id = newId("resp");
    const createdAt = Math.floor(Date.now() / 1000);
    const keepAlive = req.keep_alive === undefined ? undefined : keepAliveMs(req.keep_alive);
    const envelope = (status: string, output: OutputItem[], r?: InferResponse) => ({
      id,
      object: "response",
      created_at: createdAt,
      status,
      error: null,
      incomplete_details: r?.finish_reason === "length" ? { reason: "max_output_tokens" } : null,
      instructions: req.instructions ?? null,
      max_output_tokens: req.max_output_tokens ?? null,
      model: req.model,
      output,
      parallel_tool_calls: req.parallel_tool_calls ?? true,
      previous_response_id: null,
      reasoning: null,
      store: false,
      temperature: req.temperature ?? null,
      text: { format: req.text?.format ?? { type: "text" } },
      tool_choice: req.tool_choice ?? "auto",
      tools: req.tools ?? [],
      top_p: req.top_p ?? null,
      truncation: "disabled",
      usage: r
        ? {
            input_tokens: r.prompt_tokens,
            input_tokens_details: { cached_tokens: r.cached_tokens ?? 0 },
            output_tokens: r.tokens_generated,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: r.prompt_tokens + r.tokens_generated,
          }
        : null,
      user: req.user ?? null,
      metadata: req.metadata ?? {},
    });
    const finalOutput = (r: InferResponse, messageId: string): OutputItem[] => {
      const output: OutputItem[] = [];
      if (r.text !== "" || !r.tool_calls?.length)
        output.push({
          type: "message",
          id: messageId,
          status: r.finish_reason === "length" ? "incomplete" : "completed",
          role: "assistant",
          content: [{ type: "output_text", text: r.text, annotations: [], logprobs: [] }],
        });
      for (const c of r.tool_calls ?? [])
        output.push({
          type: "function_call",
          id: newId("fc"),
          call_id: c.id,
          name: c.name,
          arguments: c.arguments,
          status: "completed",
        });
      return output;
    };
    const statusOf = (r: InferResponse) => (r.finish_reason === "length" ? "incomplete" : "completed");

    if (!req.stream) {
      const { response } = await this.router.infer(req.model, infer, {
        signal: ctx.signal,
        admin: ctx.facts.admin,
        keepAliveMs: keepAlive,
      });
      ctx.send(200, envelope(statusOf(response), finalOutput(response, newId("msg")), response));
      return;
    }

    // streaming: Responses API events, each with its type as the SSE event name
    let sse: SseWriter | undefined;
    let sequence = 0;
    const send = (type: string, data: Record<string, unknown>) => {
      sse ??= ctx.sse();
      return sse.send(type, { type, sequence_number: sequence++, ...data });
    };
    const messageId = newId("msg");
    const output: OutputItem[] = [];
    let message: { index: number; text: string } | undefined;
    const calls = new Map<number, { index: number; item: Extract<OutputItem, { type: "function_call" }> }>();
    const started = async () => {
      if (sse) return;
      await send("response.created", { response: envelope("in_progress", []) });
      await send("response.in_progress", { response: envelope("in_progress", []) });
    };
    const openMessage = async () => {
      if (message) return message;
      await started();
      message = { index: output.length, text: "" };
      const item: OutputItem = {
        type: "message",
        id: messageId,
        status: "in_progress",
        role: "assistant",
        content: [],
      };
      output.push(item);
      await send("response.output_item.added", { output_index: message.index, item });
      await send("response.content_part.added", {
        item_id: messageId,
        output_index: message.index,
        content_index: 0,
        part: { type: "output_text", text: "", annotations: [], logprobs: [] },
      });
      return message;
    };
    const closeMessage = async (status: "completed" | "incomplete") => {
      if (!message) return;
      const part = { type: "output_text" as const, text: message.text, annotations: [] as [], logprobs: [] as [] };
      const base = { item_id: messageId, output_index: message.index, content_index: 0 };
      await send("response.output_text.done", { ...base, text: message.text, logprobs: [] });
      await send("response.content_part.done", { ...base, part });
      const item: OutputItem = { type: "message", id: messageId, status, role: "assistant", content: [part] };
      output[message.index] = item;
      await send("response.output_item.done", { output_index: message.index, item });
    };
    try {
      const { response } = await this.router.infer(req.model, infer, {
        signal: ctx.signal,
        admin: ctx.facts.admin,
        keepAliveMs: keepAlive,
        onToken: async (text) => {
          if (text === "") return;
          const m = await openMessage();
          m.text += text;
          await send("response.output_text.delta", {
            item_id: messageId,
            output_index: m.index,
            content_index: 0,
            delta: text,
            logprobs: [],
          });
        },
        onToolCall: async (piece) => {
          await started();
          let call = calls.get(piece.index);
          if (!call) {
            const itemId = newId("fc");
            call = {
              index: output.length,
              item: {
                type: "function_call",
                id: itemId,
                call_id: piece.id ?? newId("call"),
                name: piece.name ?? "",
                arguments: "",
                status: "in_progress",
              },
            };
            calls.set(piece.index, call);
            output.push({ ...call.item });
            await send("response.output_item.added", { output_index: call.index, item: { ...call.item } });
          }
          call.item.arguments += piece.arguments;
          if (piece.arguments !== "")
            await send("response.function_call_arguments.delta", {
              item_id: call.item.id,
              output_index: call.index,
              delta: piece.arguments,
            });
        },
      });
      await started();
      if (message) await closeMessage(response.finish_reason === "length" ? "incomplete" : "completed");
      else if (!response.tool_calls?.length) {
        await openMessage();
        await closeMessage(response.finish_reason === "length" ? "incomplete" : "completed");
      }
      for (const [i, c] of (response.tool_calls ?? []).entries()) {
        const call = calls.get(i);
        if (!call) continue;
        // the final arguments are the call's clean JSON, the same as a reply that is not streamed
        const item: OutputItem = { ...call.item, arguments: c.arguments, status: "completed" };
        output[call.index] = item;
        await send("response.function_call_arguments.done", {
          item_id: item.id,
          output_index: call.index,
          name: item.name,
          arguments: item.arguments,
        });
        await send("response.output_item.done", { output_index: call.index, item });
      }
      const type = response.finish_reason === "length" ? "response.incomplete" : "response.completed";
      await send(type, { response: envelope(statusOf(response), output, response) });
    } catch (err) {
      if (!sse) throw err;
      const e = toRbeeError(err);
      ctx.logFields.error_code = e.code;
      // the Responses API's error event, plus OpenAI's error body, which makes its clients raise
      await send("error", { code: e.code, message: e.message, param: e.param, error: e.toBody().error });
    }
  }
}
