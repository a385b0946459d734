import { createHash } from "node:crypto";
import {
  type ChatMessage,
  type GgufSummary,
  type InferRequest,
  type TokenLogprob,
  ValidationError,
} from "@rbee/contract";
import type { OllamaChatRequest, OllamaGenerateRequest, OllamaOptions } from "./ollama-schemas.js";
import { ollamaHistory } from "./ollama-tools.js";

/** The sampling part of a worker request. */
export type Sampling = Omit<InferRequest, "model" | "stream" | "prompt" | "messages">;

export function unsupported(param: string, what: string, instead?: string): never {
  throw new ValidationError(`${what} is not supported by rbee yet${instead ? `; ${instead}` : ""}`, param);
}

/**
 * A model name as an Ollama client sends it, as a model id rbee knows: Ollama names carry a tag
 * ("stories260k:latest"); rbee's ids do not, so ":latest" is dropped. Other tags stay (they are
 * part of references like "owner/repo:file.gguf").
 */
export function modelId(name: string): string {
  return name.endsWith(":latest") ? name.slice(0, -":latest".length) : name;
}

/** A model id as Ollama lists it: with its tag. */
export function ollamaName(id: string): string {
  return id.includes(":") ? id : `${id}:latest`;
}

const GO_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Ollama's keep_alive in milliseconds (Infinity for "forever"): a number of seconds, or a Go duration
 * ("5m", "1h30m", "300ms", "-1m"); a negative value keeps the model loaded; 0 unloads it after the request.
 */
export function ollamaKeepAliveMs(value: number | string | null | undefined): number | undefined {
  if (value === null || value === undefined || value === "") return undefined;
  if (typeof value === "number") return value < 0 ? Number.POSITIVE_INFINITY : value * 1000;
  const text = value.trim();
  if (/^-?\d+(\.\d+)?$/.test(text)) return ollamaKeepAliveMs(Number(text));
  const m = /^(-?)((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$/.exec(text);
  if (!m) {
    throw new ValidationError(
      `keep_alive ${JSON.stringify(value)} is not a duration: send e.g. "5m", "1h30m", "300ms", a number of seconds, or -1 to keep the model loaded`,
      "keep_alive",
    );
  }
  if (m[1] === "-") return Number.POSITIVE_INFINITY;
  let ms = 0;
  for (const part of (m[2] as string).matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g))
    ms += Number(part[1]) * (GO_UNITS[part[2] as string] ?? 0);
  return ms;
}

/** Ollama's `options` in the worker's words. num_ctx and runner options are Ollama's runner's own: ignored. */
export function samplingFrom(options: OllamaOptions | null | undefined): Sampling {
  const o = options ?? {};
  const stop = typeof o.stop === "string" ? [o.stop] : o.stop;
  const stops = stop?.filter((s) => s !== "");
  return {
    temperature: o.temperature,
    top_p: o.top_p,
    top_k: o.top_k,
    min_p: o.min_p,
    repeat_penalty: o.repeat_penalty,
    presence_penalty: o.presence_penalty,
    frequency_penalty: o.frequency_penalty,
    // Ollama clients send -1 for "random"; the engine takes 32 bits
    seed: o.seed === undefined || o.seed < 0 ? undefined : Number(BigInt.asUintN(32, BigInt(o.seed))),
    // -1 is "until the model stops", -2 "until the context is full": both are rbee's default
    max_tokens: o.num_predict !== undefined && o.num_predict > 0 ? o.num_predict : undefined,
    stop: stops && stops.length > 0 ? stops : undefined,
  };
}

/** `format`: "json" (any JSON object) or a JSON schema, as the worker's grammar-constrained json_schema. */
export function jsonSchemaFrom(format: string | Record<string, unknown> | null | undefined) {
  if (format === null || format === undefined || format === "") return undefined;
  if (format === "json") return { type: "object" };
  if (typeof format === "string")
    throw new ValidationError(`format ${JSON.stringify(format)} is not "json" or a JSON schema object`, "format");
  return format;
}

function checkThink(think: OllamaChatRequest["think"], model: string): void {
  if (think !== undefined && think !== null && think !== false)
    throw new ValidationError(`"${model}" does not support thinking: rbee does not separate thinking yet`, "think");
}

/** `/api/chat` messages as the worker's chat: text, and tool calls with their results. */
export function chatMessages(req: OllamaChatRequest): ChatMessage[] {
  checkThink(req.think, req.model);
  (req.messages ?? []).forEach((m, i) => {
    if (m.images && m.images.length > 0) unsupported(`messages[${i}].images`, "images");
  });
  return ollamaHistory(req);
}

/**
 * `/api/generate` as a worker request: the prompt as the user's message of a chat (with `system`
 * before it), formatted by the model's own template as Ollama does; `raw: true` sends it as it is;
 * with `suffix`, a fill-in-the-middle prompt made with the model's own FIM tokens.
 */
export function generateInput(req: OllamaGenerateRequest): Pick<InferRequest, "prompt" | "messages" | "suffix"> {
  checkThink(req.think, req.model);
  if (req.images && req.images.length > 0) unsupported("images", "images");
  if (req.template)
    unsupported(
      "template",
      "a template override",
      "the model's own chat template is used; send raw: true to format the prompt yourself",
    );
  if (req.context && req.context.length > 0)
    unsupported(
      "context",
      "context (token ids of an earlier answer)",
      "send the conversation as messages to /api/chat",
    );
  const prompt = req.prompt ?? "";
  if (req.suffix) return { prompt, suffix: req.suffix };
  if (req.raw) return { prompt };
  const messages: ChatMessage[] = [];
  if (req.system) messages.push({ role: "system", content: req.system });
  messages.push({ role: "user", content: prompt });
  return { messages };
}

/** A number as Ollama prints parameter sizes: "8.0B", "135M", "260K". */
export function parameterSize(count: number): string {
  if (count >= 1e9) return `${(count / 1e9).toFixed(1)}B`;
  if (count >= 1e6) return `${Math.round(count / 1e6)}M`;
  if (count >= 1e3) return `${Math.round(count / 1e3)}K`;
  return String(count);
}

/** Ollama's `details` of a model, from what the GGUF header says (blank when rbee has not read it). */
export function modelDetails(gguf: GgufSummary | undefined) {
  return {
    parent_model: "",
    format: "gguf",
    family: gguf?.architecture ?? "",
    families: gguf ? [gguf.architecture] : null,
    parameter_size: gguf ? parameterSize(gguf.parameter_count) : "",
    quantization_level: gguf?.quantization ?? "",
  };
}

/**
 * Ollama's `model_info`: the GGUF keys clients read, Continue its `<arch>.context_length`. The
 * context length is the model's trained one, as Ollama reports it; `contextSize` (the running
 * worker's) stands in when rbee has not read the header.
 */
export function modelInfo(gguf: GgufSummary | undefined, contextSize: number | undefined): Record<string, unknown> {
  if (!gguf) {
    return contextSize === undefined
      ? {}
      : { "general.architecture": "unknown", "unknown.context_length": contextSize };
  }
  const a = gguf.architecture;
  const info: Record<string, unknown> = {
    "general.architecture": a,
    "general.parameter_count": gguf.parameter_count,
    [`${a}.context_length`]: gguf.context_length,
    [`${a}.embedding_length`]: gguf.embedding_length,
    [`${a}.block_count`]: gguf.block_count,
    [`${a}.attention.head_count`]: gguf.head_count,
    [`${a}.attention.head_count_kv`]: gguf.head_count_kv,
  };
  if (gguf.name !== undefined) info["general.name"] = gguf.name;
  if (gguf.feed_forward_length !== undefined) info[`${a}.feed_forward_length`] = gguf.feed_forward_length;
  if (gguf.vocab_size !== undefined) info[`${a}.vocab_size`] = gguf.vocab_size;
  if (gguf.expert_count !== undefined) info[`${a}.expert_count`] = gguf.expert_count;
  return info;
}

/**
 * A digest for a model: Ollama's is its manifest's sha256; rbee has no manifest, so this is the sha256
 * of the model's id and size, stable while the model stays the same (an identifier, not a file hash).
 */
export function modelDigest(id: string, size: number): string {
  return createHash("sha256").update(`${id}\0${size}`).digest("hex");
}

/** Unit-length vectors, as Ollama's /api/embed answers. */
export function normalize(vector: number[]): number[] {
  let sum = 0;
  for (const x of vector) sum += x * x;
  const norm = Math.sqrt(sum);
  return norm === 0 ? vector : vector.map((x) => x / norm);
}

/** The worker's logprobs as Ollama writes them: `{token, logprob, top_logprobs: [{token, logprob}]}`. */
export function ollamaLogprobs(logprobs: readonly TokenLogprob[]) {
  return logprobs.map((l) => ({
    token: l.token,
    logprob: l.logprob,
    top_logprobs: l.top_logprobs.map((t) => ({ token: t.token, logprob: t.logprob })),
  }));
}
