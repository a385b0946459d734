import { type ChatMessage, type FinishReason, type InferRequest, keepAliveMs, ValidationError } from "@rbee/contract";
import type { ChatCompletionRequest, CompletionRequest, EmbeddingsRequest } from "./schemas.js";

export interface TranslatedInfer {
  model: string;
  infer: Omit<InferRequest, "model" | "stream">;
  stream: boolean;
  includeUsage: boolean;
  keepAliveMs: number | undefined;
}

function unsupported(param: string, what: string, instead?: string): never {
  throw new ValidationError(`${what} is not supported by rbee yet${instead ? `; ${instead}` : ""}`, param);
}

function contentText(content: unknown, index: number): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  const parts = content as Array<{ type: string; text?: string }>;
  return parts
    .map((p, j) => {
      if (p.type !== "text")
        unsupported(`messages[${index}].content[${j}]`, `content of type '${p.type}'`, "send text parts only");
      return p.text ?? "";
    })
    .join("\n");
}

/** Sampling fields every completion kind shares, from OpenAI's names to the worker's. */
function sampling(
  req: ChatCompletionRequest | CompletionRequest,
): Omit<InferRequest, "model" | "stream" | "prompt" | "messages"> {
  if ((req.n ?? 1) !== 1) unsupported("n", "n other than 1", "send n requests instead");
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

export function translateChat(req: ChatCompletionRequest): TranslatedInfer {
  if (req.tools && req.tools.length > 0)
    unsupported(
      "tools",
      "tool calling",
      "describe the tools in the system message and ask for JSON with response_format",
    );
  if (req.functions && req.functions.length > 0) unsupported("functions", "function calling");
  if (req.logprobs) unsupported("logprobs", "logprobs");
  const messages: ChatMessage[] = req.messages.map((m, i) => {
    if (m.role === "tool" || m.role === "function")
      unsupported(`messages[${i}].role`, `messages with role '${m.role}'`);
    const role = m.role === "developer" ? "system" : (m.role as ChatMessage["role"]);
    return { role, content: contentText(m.content, i) };
  });
  let json_schema: Record<string, unknown> | undefined;
  const format = req.response_format;
  if (format?.type === "json_object") json_schema = { type: "object" };
  else if (format?.type === "json_schema") json_schema = format.json_schema.schema ?? { type: "object" };
  return {
    model: req.model,
    infer: {
      ...sampling(req),
      messages,
      max_tokens: req.max_completion_tokens ?? req.max_tokens ?? undefined,
      json_schema,
    },
    stream: req.stream ?? false,
    includeUsage: req.stream_options?.include_usage ?? false,
    keepAliveMs: keepAlive(req.keep_alive),
  };
}

/** OpenAI's legacy completions default to 16 tokens when max_tokens is not given. */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;

export function translateCompletion(req: CompletionRequest): TranslatedInfer {
  if (req.echo) unsupported("echo", "echo");
  if (req.suffix) unsupported("suffix", "suffix (fill-in-the-middle)");
  if (req.logprobs !== null && req.logprobs !== undefined) unsupported("logprobs", "logprobs");
  if ((req.best_of ?? 1) !== 1) unsupported("best_of", "best_of other than 1");
  let prompt: string;
  if (typeof req.prompt === "string") prompt = req.prompt;
  else if (req.prompt.length === 1 && typeof req.prompt[0] === "string") prompt = req.prompt[0];
  else if (req.prompt.every((p) => typeof p === "string"))
    unsupported("prompt", "several prompts in one request", "send one request per prompt");
  else unsupported("prompt", "prompts given as token ids", "send the prompt as text");
  return {
    model: req.model,
    infer: { ...sampling(req), prompt, max_tokens: req.max_tokens ?? COMPLETIONS_DEFAULT_MAX_TOKENS },
    stream: req.stream ?? false,
    includeUsage: req.stream_options?.include_usage ?? false,
    keepAliveMs: keepAlive(req.keep_alive),
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
export function openaiFinishReason(reason: FinishReason): "stop" | "length" {
  return reason === "length" ? "length" : "stop";
}
