import {
  type Device,
  type InferRequest,
  InsufficientMemoryError,
  ModelNotFoundError,
  parseJson,
  RbeeError,
  safeParse,
  type WorkerCapability,
  type WorkerHeartbeat,
} from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import { z } from "zod";
import type { InferContext, InferResult, LoadContext, LoadedModel, WorkerEngine } from "../engine.js";
import { type EngineClient, EngineHttpError } from "./engine-client.js";
import { EngineEndpoint } from "./engine-endpoint.js";
import { EngineStartError } from "./engine-errors.js";
import { refuseUnmapped } from "./refuse-unmapped.js";
import { samplingFields } from "./sampling-fields.js";
import type { EngineGuard } from "./spawn-guarded.js";

/**
 * What an engine's own stats endpoint says at one moment. Every field is optional: an engine (or a
 * version of it) that does not report one leaves the heartbeat's value as it was.
 */
export interface EngineStatsSample {
  /** Requests the engine is generating for now (its batch). */
  running?: number;
  /** Requests waiting inside the engine. */
  waiting?: number;
  /** Share of the KV cache in use, 0..1. */
  kvCacheUsage?: number;
  /** Generated tokens since the engine started (a counter: tokens/s is its rate). */
  generatedTokens?: number;
  /** Device memory the engine holds, in bytes. */
  memoryUsed?: number;
}

/** One engine behind an OpenAI-compatible server (vLLM's `vllm serve`, TensorRT-LLM's `trtllm-serve`). */
export interface OpenAiEngineSpec {
  /** The engine's name in logs and errors: "vllm". */
  name: string;
  /** The worker type and implementation the worker reports. */
  workerType: string;
  capabilities: readonly WorkerCapability[];
  /** What to tell a user whose engine is missing or not answering. */
  hint: string;
  /** The oldest version the adapter speaks to ("0.6.0"); an older or unreadable one fails the load. */
  minVersion: string;
  /** Reads the engine's stats endpoint (`/metrics`), leniently. */
  readStats(client: EngineClient): Promise<EngineStatsSample>;
}

export interface OpenAiEngineOptions {
  /** The name the engine serves the model under (sent as `model`), e.g. its `--served-model-name`. */
  servedModel: string;
  /**
   * Attach mode: other names the running engine may serve the model under (its Hugging Face repo id,
   * when the worker was given the repo's directory); the first one `/v1/models` lists is used.
   */
  servedAliases?: readonly string[];
  /** The name the worker serves it under. */
  modelId: string;
  device: Device;
  /** Requests the worker sends the engine at once. */
  parallel: number;
  /** Context per request, when known. */
  ctxSize?: number;
  /** Attach mode: the running engine's URL. */
  url?: string;
  /** Start mode: the engine's program and its arguments for a port; tied to the adapter's life. */
  start?: {
    binary: string;
    args: (port: number) => string[];
    env?: Record<string, string>;
    startTimeoutMs: number;
    guard?: EngineGuard;
  };
  /** How often the stats endpoint is read; default 1 s. */
  statsIntervalMs?: number;
}

/** `GET /version` of vLLM and trtllm-serve. */
const VersionReply = z.looseObject({ version: z.string() });
/** `GET /v1/models`. */
const ModelsReply = z.looseObject({ data: z.array(z.looseObject({ id: z.string() })) });
/** One SSE chunk of `/v1/completions` (`text`) or `/v1/chat/completions` (`delta.content`), or an error chunk. */
const StreamChunk = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        text: z.string().nullish(),
        delta: z.looseObject({ content: z.string().nullish() }).nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .optional(),
  usage: z
    .looseObject({ prompt_tokens: z.number().int().nonnegative(), completion_tokens: z.number().int().nonnegative() })
    .nullish(),
  error: z.union([z.string(), z.looseObject({ message: z.string(), code: z.number().int().optional() })]).optional(),
});

/** Words an engine uses when a model does not fit its device. */
const OUT_OF_MEMORY =
  /out of memory|OutOfMemoryError|No available memory for the cache blocks|insufficient memory|larger than the available KV cache/i;

/** Compares dotted versions by their leading numbers: "0.10.1" > "0.6.3"; undefined when one is unreadable. */
export function compareVersions(a: string, b: string): number | undefined {
  const nums = (v: string) =>
    /^v?(\d+)\.(\d+)(?:\.(\d+))?/
      .exec(v.trim())
      ?.slice(1, 4)
      .map((n) => Number(n ?? 0));
  const x = nums(a);
  const y = nums(b);
  if (x === undefined || y === undefined) return undefined;
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

/**
 * An engine with an OpenAI-compatible HTTP server behind the worker contract: vLLM and TensorRT-LLM
 * share all of it but their stats. It attaches to a running server, or starts one as its child
 * (EngineProcess: never outliving the adapter). Load checks `/version` and that `/v1/models` lists
 * the model; `/v1/infer` goes to `/v1/completions` (a prompt) or `/v1/chat/completions` (messages),
 * always streamed; the heartbeat carries the engine's own stats, read off the heartbeat's path.
 */
export class OpenAiCompatibleEngine implements WorkerEngine {
  readonly workerType: string;
  readonly implementation: string;
  readonly capabilities: readonly WorkerCapability[];

  #spec: OpenAiEngineSpec;
  #o: OpenAiEngineOptions;
  /** The engine this adapter talks to (started by it, or attached to). */
  readonly engine: EngineEndpoint;
  #timer: NodeJS.Timeout | undefined;
  #stats: Required<Omit<EngineStatsSample, "generatedTokens" | "memoryUsed">> & {
    tokensPerSecond: number;
    memoryUsed?: number;
  } = { running: 0, waiting: 0, kvCacheUsage: 0, tokensPerSecond: 0 };
  #lastTokens: { tokens: number; at: number } | undefined;
  #statsWarned = false;
  #log: Logger | undefined;
  /** The name the engine serves the model under: servedModel, or the alias /v1/models lists. */
  #served: string;

  constructor(spec: OpenAiEngineSpec, options: OpenAiEngineOptions) {
    this.#spec = spec;
    this.#o = options;
    this.#served = options.servedModel;
    this.workerType = spec.workerType;
    this.implementation = spec.name;
    this.capabilities = spec.capabilities;
    this.engine = new EngineEndpoint(spec.name);
  }

  get version(): string {
    return this.engine.version;
  }

  async load(ctx: LoadContext): Promise<LoadedModel> {
    const { log } = ctx;
    this.#log = log;
    const name = this.#spec.name;
    const start = this.#o.start;
    let client: EngineClient;
    try {
      client = await this.engine.open(
        {
          start: start && {
            name,
            binary: start.binary,
            args: start.args,
            env: () => start.env ?? {},
            binaryHint: this.#spec.hint,
            readyPath: "/health",
            startTimeoutMs: start.startTimeoutMs,
            guard: start.guard,
          },
          url: this.#o.url ?? "",
        },
        ctx,
      );
    } catch (err) {
      throw outOfMemoryAtStart(err, name, this.#served) ?? err;
    }
    await this.#checkVersion(client, ctx.signal);
    await this.#checkModel(client, ctx.signal);
    await this.#poll();
    this.#timer = setInterval(() => void this.#poll(), this.#o.statsIntervalMs ?? 1000);
    this.#timer.unref();
    log.info(
      {
        engine: name,
        ...this.engine.facts(),
        model: this.#served,
      },
      `${name} serving`,
    );
    return { modelId: this.#o.modelId, slots: this.#o.parallel, contextSize: this.#o.ctxSize };
  }

  async #checkVersion(client: EngineClient, signal: AbortSignal): Promise<void> {
    const name = this.#spec.name;
    let raw: unknown;
    try {
      raw = await client.json("/version", { timeoutMs: 10_000, signal });
    } catch (err) {
      if (err instanceof EngineHttpError)
        throw new RbeeError(
          `${this.engine.baseUrl} answered GET /version with HTTP ${err.reply.status} (${err.reply.message}): it is not ${name}'s OpenAI-compatible server; ${this.#spec.hint}`,
          { statusCode: 502, code: "bad_gateway" },
        );
      throw new RbeeError(
        `no ${name} answers at ${this.engine.baseUrl}: ${(err as Error).message}; ${this.#spec.hint}`,
        {
          statusCode: 503,
          code: "engine_unreachable",
          retryable: true,
        },
      );
    }
    const v = safeParse(VersionReply, raw, `${name} /version`);
    if (!v.ok)
      throw new RbeeError(
        `${this.engine.baseUrl} does not answer /version as ${name} does (${JSON.stringify(raw).slice(0, 120)}): ${v.error.message}`,
        { statusCode: 502, code: "bad_gateway" },
      );
    this.engine.version = v.value.version;
    const cmp = compareVersions(this.engine.version, this.#spec.minVersion);
    if (cmp === undefined || cmp < 0)
      throw new RbeeError(
        `${name} at ${this.engine.baseUrl} reports version '${this.engine.version}'; this adapter needs ${name} ${this.#spec.minVersion} or newer: upgrade it`,
        { statusCode: 502, code: "engine_version_unsupported", details: { version: this.engine.version } },
      );
  }

  async #checkModel(client: EngineClient, signal: AbortSignal): Promise<void> {
    const name = this.#spec.name;
    const models = safeParse(
      ModelsReply,
      await client.json("/v1/models", { timeoutMs: 10_000, signal }),
      `${name} /v1/models`,
    );
    if (!models.ok)
      throw new RbeeError(`${name} answered /v1/models in an unexpected shape: ${models.error.message}`, {
        statusCode: 502,
        code: "bad_gateway",
      });
    const ids = models.value.data.map((m) => m.id);
    const served = [this.#o.servedModel, ...(this.#o.servedAliases ?? [])].find((n) => ids.includes(n));
    if (served !== undefined) this.#served = served;
    else
      throw new ModelNotFoundError(
        this.#o.servedModel,
        `${name} at ${this.engine.baseUrl} serves ${ids.length > 0 ? ids.map((i) => `'${i}'`).join(", ") : "no model"}; attach to the ${name} that serves it, or give that name with -m`,
      );
  }

  async #poll(): Promise<void> {
    const client = this.engine.client;
    if (client === undefined) return;
    let s: EngineStatsSample;
    try {
      s = await this.#spec.readStats(client);
    } catch (err) {
      if (!this.#statsWarned) {
        this.#statsWarned = true;
        this.#log?.warn(
          { engine: this.#spec.name, err: (err as Error).message },
          `cannot read ${this.#spec.name}'s stats; the heartbeat keeps its last values`,
        );
      }
      return;
    }
    const now = Date.now();
    let rate = this.#stats.tokensPerSecond;
    if (s.generatedTokens !== undefined) {
      if (this.#lastTokens && now > this.#lastTokens.at)
        rate = Math.max(0, ((s.generatedTokens - this.#lastTokens.tokens) * 1000) / (now - this.#lastTokens.at));
      this.#lastTokens = { tokens: s.generatedTokens, at: now };
    }
    this.#stats = {
      running: Math.max(0, Math.round(s.running ?? this.#stats.running)),
      waiting: Math.max(0, Math.round(s.waiting ?? this.#stats.waiting)),
      kvCacheUsage: Math.min(1, Math.max(0, s.kvCacheUsage ?? this.#stats.kvCacheUsage)),
      tokensPerSecond: Math.round(rate * 10) / 10,
      memoryUsed: s.memoryUsed ?? this.#stats.memoryUsed,
    };
  }

  async infer(request: InferRequest, ctx: InferContext): Promise<InferResult> {
    refuseUnmapped(request, this.#spec.name);
    const client = this.engine.ready();
    const chat = request.messages !== undefined;
    const path = chat ? "/v1/chat/completions" : "/v1/completions";
    let text = "";
    let tokens = 0;
    let finish: string | undefined;
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    let done = false;
    try {
      await client.stream(path, openAiBody(request, this.#served), { signal: ctx.signal }, (message) => {
        const data = message.data.trim();
        if (data === "[DONE]") {
          done = true;
          return "stop";
        }
        const parsed = parseJson(data);
        const chunk = parsed.ok ? safeParse(StreamChunk, parsed.value, `${this.#spec.name} ${path} chunk`) : undefined;
        if (chunk === undefined || !chunk.ok)
          throw new RbeeError(`${this.#spec.name} sent a stream chunk rbee cannot read: ${data.slice(0, 120)}`, {
            statusCode: 502,
            code: "bad_gateway",
          });
        const c = chunk.value;
        if (c.error !== undefined) {
          const e = typeof c.error === "string" ? { message: c.error, code: 500 } : c.error;
          throw new EngineHttpError(
            { status: e.code ?? 500, message: e.message, body: parsed.ok ? parsed.value : data },
            path,
          );
        }
        if (c.usage) usage = c.usage;
        const choice = c.choices?.[0];
        if (choice?.finish_reason) finish = choice.finish_reason;
        const piece = (chat ? choice?.delta?.content : choice?.text) ?? "";
        if (piece === "") return undefined;
        text += piece;
        tokens += 1;
        return ctx.emit(piece, 1);
      });
    } catch (err) {
      if (ctx.signal.aborted) return { text, tokensGenerated: tokens, promptTokens: 0, finishReason: "cancelled" };
      throw toRbeeError(err, this.#served, this.#spec.name);
    }
    if (ctx.signal.aborted) return { text, tokensGenerated: tokens, promptTokens: 0, finishReason: "cancelled" };
    if (!done && finish === undefined)
      throw new RbeeError(`${this.#spec.name} ended the stream without a finish_reason or [DONE]`, {
        statusCode: 502,
        code: "engine_stream_broken",
        retryable: true,
      });
    return {
      text,
      tokensGenerated: usage?.completion_tokens ?? tokens,
      promptTokens: usage?.prompt_tokens ?? 0,
      finishReason: finish === "length" ? "length" : "stop",
    };
  }

  memory(): { used: number; total: number } {
    return { used: this.#stats.memoryUsed ?? 0, total: this.#o.device.memory_total };
  }

  heartbeatExtras(standard: Readonly<WorkerHeartbeat>): Partial<WorkerHeartbeat> {
    return {
      batch_size: this.#stats.running,
      queue_depth: (standard.queue_depth ?? 0) + this.#stats.waiting,
      throughput_tokens_per_second: this.#stats.tokensPerSecond,
      kv_cache_usage: this.#stats.kvCacheUsage,
      loaded_models: [this.#o.modelId],
    };
  }

  async dispose(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.engine.close();
  }
}

/** An engine that exited while starting because the model did not fit: insufficient_memory, with its words. */
function outOfMemoryAtStart(err: unknown, name: string, model: string): Error | undefined {
  if (!(err instanceof EngineStartError)) return undefined;
  const line = [...err.facts.logTail].reverse().find((l) => OUT_OF_MEMORY.test(l));
  if (line === undefined) return undefined;
  return new InsufficientMemoryError(`${name} could not load '${model}': ${line.trim()}`, {
    model,
    engine_message: line.trim(),
    log_tail: err.facts.logTail,
  });
}

/**
 * The body of `/v1/completions` (a prompt) or `/v1/chat/completions` (messages) for an InferRequest,
 * always streamed with the usage in the last chunk. `top_k`, `min_p` and `repetition_penalty` are
 * extensions vLLM and TensorRT-LLM both take; `json_schema` becomes OpenAI's `response_format`.
 */
export function openAiBody(request: InferRequest, model: string): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model,
    stream: true,
    stream_options: { include_usage: true },
    // rbee's default is no repeat penalty; say so, whatever the engine's own default is
    repetition_penalty: request.repeat_penalty ?? 1,
  };
  if (request.messages !== undefined)
    body.messages = request.messages.map((m) => ({ role: m.role, content: m.content }));
  else body.prompt = request.prompt ?? "";
  if (request.max_tokens !== undefined) body.max_tokens = request.max_tokens;
  Object.assign(body, samplingFields(request));
  if (request.json_schema !== undefined)
    body.response_format = { type: "json_schema", json_schema: { name: "output", schema: request.json_schema } };
  return body;
}

/**
 * An OpenAI-compatible engine's error replies as rbee errors, with the engine's words: 404 (vLLM's
 * "The model `x` does not exist.") is `model_not_found`; out-of-memory words are
 * `insufficient_memory`; other 4xx are the client's (400, the engine's message); 503 stays retryable;
 * the rest are the engine's (502).
 */
export function toRbeeError(err: unknown, model: string, name: string): Error {
  if (!(err instanceof EngineHttpError)) return err instanceof Error ? err : new Error(String(err));
  const { status, message } = err.reply;
  if (status === 404) return new ModelNotFoundError(model, `${name} says: ${message}`);
  if (OUT_OF_MEMORY.test(message))
    return new InsufficientMemoryError(`${name} ran out of memory for '${model}': ${message}`, {
      model,
      engine_message: message,
    });
  if (status >= 400 && status < 500) {
    const param = /response_format|json_schema|schema/i.test(message) ? "json_schema" : null;
    return new RbeeError(`${name} refused the request: ${message}`, {
      statusCode: 400,
      code: "invalid_request",
      param,
    });
  }
  if (status === 503)
    return new RbeeError(`${name} is not available: ${message}`, {
      statusCode: 503,
      code: "engine_unavailable",
      retryable: true,
      retryAfterSeconds: 1,
    });
  return new RbeeError(`${name} failed (HTTP ${status}): ${message}`, { statusCode: 502, code: "engine_error" });
}
