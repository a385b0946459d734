import {
  type ChatMessage,
  type FinishReason,
  type InferRequest,
  keepAliveMs,
  type ToolChoice,
  type ToolDefinition,
  ValidationError,
} from "@rbee/contract";
import type { ChatCompletionRequest, CompletionRequest, EmbeddingsRequest } from "./schemas.js";

export interface TranslatedInfer {
  model: string;
  infer: Omit<InferRequest, "model" | "stream">;
  stream: boolean;
  includeUsage: boolean;
  keepAliveMs: number | undefined;
  /** Choices to generate (OpenAI's `n`): that many requests, with seeds seed, seed+1, ... when seeded. */
  n: number;
  /** Whether the answer carries logprobs (and in which of OpenAI's two shapes: chat's or legacy's). */
  logprobs: boolean;
}

function unsupported(param: string, what: string, instead?: string): never {
  throw new ValidationError(`${what} is not supported by rbee yet${instead ? `; ${instead}` : ""}`, param);
}

export function contentText(content: unknown, param: string): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  const parts = content as Array<{ type: string; text?: string }>;
  return parts
    .map((p, j) => {
      if (p.type === "image_url" || p.type === "input_image" || p.type === "image")
        throw new ValidationError(
          `${param}[${j}] is an image, and this model cannot see images: images need a vision model (a GGUF with its multimodal projector), which rbee's workers do not load yet; send text only`,
          `${param}[${j}]`,
        );
      if (p.type !== "text" && p.type !== "input_text" && p.type !== "output_text")
        unsupported(`${param}[${j}]`, `content of type '${p.type}'`, "send text parts only");
      return p.text ?? "";
    })
    .join("\n");
}

/** Sampling fields every completion kind shares, from OpenAI's names to the worker's. */
function sampling(
  req: ChatCompletionRequest | CompletionRequest,
): Omit<InferRequest, "model" | "stream" | "prompt" | "messages"> {
  if (req.logit_bias && Object.keys(req.logit_bias).length > 0) unsupported("logit_bias", "logit_bias");
  const stop = req.stop ?? undefined;
  return {
    temperature: req.temperature ?? undefined,
    top_p: req.top_p ?? undefined,
    top_k: req.top_k,
    min_p: req.min_p,
    repeat_penalty: req.repeat_penalty,
    presence_penalty: req.presence_penalty ?? undefined,
    frequency_penalty: req.frequency_penalty ?? undefined,
    // OpenAI seeds are any integer; the engine takes 32 bits
    seed: req.seed === null || req.seed === undefined ? undefined : Number(BigInt.asUintN(32, BigInt(req.seed))),
    stop: typeof stop === "string" ? (stop === "" ? undefined : stop) : stop?.filter((s) => s !== ""),
  };
}

function keepAlive(value: CompletionRequest["keep_alive"]): number | undefined {
  return value === undefined ? undefined : keepAliveMs(value);
}

/** OpenAI's tools (and the older `functions`) in the worker contract's terms. */
function tools(req: ChatCompletionRequest): { tools?: ToolDefinition[]; tool_choice?: ToolChoice } {
  const defs = [...(req.tools ?? []).map((t) => t.function), ...(req.functions ?? [])].map(
    (f): ToolDefinition => ({
      name: f.name,
      ...(f.description === undefined ? {} : { description: f.description }),
      ...(f.parameters === undefined ? {} : { parameters: f.parameters }),
    }),
  );
  for (const [i, d] of defs.entries())
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(d.name))
      throw new ValidationError(
        `tools[${i}].function.name '${d.name}' must be 1-64 letters, digits, '_', '.' or '-'`,
        `tools[${i}].function.name`,
      );
  const choice = req.tool_choice ?? req.function_call ?? undefined;
  let tool_choice: ToolChoice | undefined;
  if (typeof choice === "string") tool_choice = choice;
  else if (choice !== undefined) {
    const name = "function" in choice ? (choice.function as { name: string }).name : (choice as { name: string }).name;
    if (!defs.some((d) => d.name === name))
      throw new ValidationError(`tool_choice names '${name}', which is not one of the tools`, "tool_choice");
    tool_choice = { name };
  }
  if (defs.length === 0) {
    if (tool_choice === "required" || typeof tool_choice === "object")
      throw new ValidationError("tool_choice asks for a tool call, but the request has no tools", "tool_choice");
    return {};
  }
  return { tools: defs, ...(tool_choice === undefined ? {} : { tool_choice }) };
}

function chatMessages(req: ChatCompletionRequest): ChatMessage[] {
  return req.messages.map((m, i): ChatMessage => {
    const content = contentText(m.content, `messages[${i}].content`);
    if (m.role === "tool" || m.role === "function")
      return {
        role: "tool",
        content,
        ...(m.tool_call_id === undefined ? {} : { tool_call_id: m.tool_call_id }),
        ...(m.name === undefined ? {} : { name: m.name }),
      };
    if (m.role === "assistant") {
      const calls = [
        ...(m.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })),
        ...(m.function_call
          ? [{ id: `call_${i}`, name: m.function_call.name, arguments: m.function_call.arguments }]
          : []),
      ];
      return { role: "assistant", content, ...(calls.length > 0 ? { tool_calls: calls } : {}) };
    }
    return { role: m.role === "developer" ? "system" : m.role, content };
  });
}

export function translateChat(req: ChatCompletionRequest): TranslatedInfer {
  const messages = chatMessages(req);
  let json_schema: Record<string, unknown> | undefined;
  const format = req.response_format;
  if (format?.type === "json_object") json_schema = { type: "object" };
  else if (format?.type === "json_schema")
    json_schema = (format.json_schema as { schema?: Record<string, unknown> }).schema ?? { type: "object" };
  const logprobs = req.logprobs === true;
  return {
    model: req.model,
    infer: {
      ...sampling(req),
      messages,
      max_tokens: req.max_completion_tokens ?? req.max_tokens ?? undefined,
      json_schema,
      ...tools(req),
      ...(req.parallel_tool_calls === false ? { parallel_tool_calls: false } : {}),
      ...(logprobs ? { logprobs: req.top_logprobs ?? 0 } : {}),
    },
    stream: req.stream ?? false,
    includeUsage: req.stream_options?.include_usage ?? false,
    keepAliveMs: keepAlive(req.keep_alive),
    n: req.n ?? 1,
    logprobs,
  };
}

/** OpenAI's legacy completions default to 16 tokens when max_tokens is not given. */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

export function translateCompletion(req: CompletionRequest): TranslatedInfer {
  if (req.echo) unsupported("echo", "echo");
  if ((req.best_of ?? 1) !== 1) unsupported("best_of", "best_of other than 1", "use n");
  let prompt: string;
  if (typeof req.prompt === "string") prompt = req.prompt;
  else if (req.prompt.length === 1 && typeof req.prompt[0] === "string") prompt = req.prompt[0];
  else if (req.prompt.every((p) => typeof p === "string"))
    unsupported("prompt", "several prompts in one request", "send one request per prompt");
  else unsupported("prompt", "prompts given as token ids", "send the prompt as text");
  return {
    model: req.model,
    infer: {
      ...sampling(req),
      prompt,
      max_tokens: req.max_tokens ?? COMPLETIONS_DEFAULT_MAX_TOKENS,
      ...(req.suffix ? { suffix: req.suffix } : {}),
      ...(req.logprobs !== null && req.logprobs !== undefined ? { logprobs: req.logprobs } : {}),
    },
    stream: req.stream ?? false,
    includeUsage: req.stream_options?.include_usage ?? false,
    keepAliveMs: keepAlive(req.keep_alive),
    n: req.n ?? 1,
    logprobs: req.logprobs !== null && req.logprobs !== undefined,
  };
}

export function translateEmbeddings(req: EmbeddingsRequest): {
  model: string;
  input: string[];
  base64: boolean;
  keepAliveMs?: number;
} {
  if (req.dimensions !== undefined) unsupported("dimensions", "dimensions");
  const input = req.input;
  if (typeof input === "string")
    return {
      model: req.model,
      input: [input],
      base64: req.encoding_format === "base64",
      keepAliveMs: keepAlive(req.keep_alive),
    };
  if (!input.every((x) => typeof x === "string")) unsupported("input", "input given as token ids", "send text");
  return {
    model: req.model,
    input: input as string[],
    base64: req.encoding_format === "base64",
    keepAliveMs: keepAlive(req.keep_alive),
  };
}

/** The worker's finish reasons in OpenAI's words. */
export function openaiFinishReason(reason: FinishReason): "stop" | "length" | "tool_calls" {
  return reason === "length" ? "length" : reason === "tool_calls" ? "tool_calls" : "stop";
}
