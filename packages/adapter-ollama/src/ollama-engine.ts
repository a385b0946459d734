import {
  type Device,
  type EmbedRequest,
  type EmbedResponse,
  type InferRequest,
  InsufficientMemoryError,
  ModelNotFoundError,
  RbeeError,
  safeParse,
  type WorkerCapability,
  type WorkerHeartbeat,
} from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import {
  type EngineClient,
  EngineEndpoint,
  type EngineGuard,
  EngineHttpError,
  type InferContext,
  type InferResult,
  type LoadContext,
  type LoadedModel,
  probeEngine,
  refuseUnmapped,
  samplingFields,
  type WorkerEngine,
} from "@rbee/worker-kit";
import {
  EmbedReply,
  GenerateChunk,
  PsReply,
  PullProgress,
  ShowReply,
  TagsReply,
  VersionReply,
} from "./ollama-replies.js";

/** Where Ollama listens unless told otherwise (Ollama's own default). */
export const DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434";
/** How long `ollama serve` may take to answer before the adapter gives up (below the hive's 120 s). */
export const DEFAULT_OLLAMA_START_TIMEOUT_MS = 60_000;

export const OLLAMA_HINT =
  "install Ollama (https://ollama.com/download) and run `ollama serve`, point the adapter at yours with --ollama-url (or OLLAMA_HOST), or pass --start to start `ollama serve` with the binary of --engine (or `rbee engine add ollama <path>`)";

export interface OllamaEngineOptions {
  /** The Ollama model name (`llama3.2:1b`); pulled at load. */
  model: string;
  /** The name the worker serves it under (default the model name). */
  modelId: string;
  device: Device;
  /** Attach mode: the running Ollama's URL. */
  url?: string;
  /** Start mode: run `<binary> serve` on a free loopback port, tied to the adapter's life. */
  start?: { binary: string; startTimeoutMs?: number; guard?: EngineGuard; env?: Record<string, string> };
  /** Ollama's `keep_alive` for every request ("5m", "-1", "0"...); default: Ollama's own. */
  keepAlive?: string;
  /** Requests Ollama generates at once (the worker's slots). */
  parallel: number;
  /** Context per request (Ollama's `num_ctx` option), when given. */
  ctxSize?: number;
  /** How often /api/ps and /api/tags are read for heartbeats; default 2 s. */
  statsIntervalMs?: number;
}

function pullFacts(p: { status?: string; total?: number; completed?: number }): string {
  if (p.total && p.completed !== undefined)
    return `${p.status ?? "pulling"} ${Math.floor((100 * p.completed) / p.total)}%`;
  return p.status ?? "";
}

function keepAliveValue(v: string): string | number {
  return /^-?\d+$/.test(v) ? Number(v) : v;
}

/**
 * Ollama behind the worker contract. It attaches to a running Ollama, or starts `ollama serve` as
 * its child (EngineProcess: never outliving the adapter). Load pulls the model (`/api/pull`, its
 * progress in the log) and checks it (`/api/show`); `/v1/infer` goes to `/api/generate` (a prompt,
 * `raw: true`) or `/api/chat` (messages), always streamed; `/v1/embed` to `/api/embed`. The heartbeat
 * carries `/api/ps` (loaded models, `size_vram`), read off the heartbeat's path.
 */
export class OllamaEngine implements WorkerEngine {
  readonly workerType = "ollama";
  readonly implementation = "ollama";
  readonly capabilities: readonly WorkerCapability[] = ["text-generation", "chat", "json_schema", "embeddings"];

  #o: OllamaEngineOptions;
  /** The Ollama this adapter talks to (started by it, or attached to). */
  readonly engine = new EngineEndpoint("ollama");
  #timer: NodeJS.Timeout | undefined;
  #ps: { name: string; size_vram?: number; expires_at?: string }[] = [];
  #tags: string[] = [];

  constructor(options: OllamaEngineOptions) {
    this.#o = options;
  }

  get version(): string {
    return this.engine.version;
  }

  async load(ctx: LoadContext): Promise<LoadedModel> {
    const { log } = ctx;
    const start = this.#o.start;
    const client = await this.engine.open(
      {
        start: start && {
          name: "ollama",
          binary: start.binary,
          args: () => ["serve"],
          // Ollama reads where to listen from OLLAMA_HOST
          env: (port) => ({ ...start.env, OLLAMA_HOST: `127.0.0.1:${port}` }),
          binaryHint: OLLAMA_HINT,
          readyPath: "/api/version",
          startTimeoutMs: start.startTimeoutMs ?? DEFAULT_OLLAMA_START_TIMEOUT_MS,
          guard: start.guard,
        },
        url: this.#o.url ?? DEFAULT_OLLAMA_URL,
      },
      ctx,
    );
    const v = await probeEngine(client, "/api/version", VersionReply, {
      product: "Ollama",
      hint: OLLAMA_HINT,
      signal: ctx.signal,
    });
    this.engine.version = v.version;
    log.info(
      { engine: "ollama", url: this.engine.baseUrl, version: v.version, model: this.#o.model },
      "pulling the model through ollama",
    );
    let pullError: Error | undefined;
    try {
      await this.#pull(client, ctx);
    } catch (err) {
      // an Ollama with no way to its registry (offline) cannot pull even a model it has: go on
      // when /api/show finds the model, say why otherwise
      if (ctx.signal.aborted) throw err;
      pullError = err as Error;
    }
    try {
      const show = safeParse(
        ShowReply,
        await client.json("/api/show", { body: { model: this.#o.model }, signal: ctx.signal }),
        "ollama /api/show",
      );
      if (!show.ok) log.warn({ err: show.error.message }, "ollama /api/show unreadable");
    } catch (err) {
      throw pullError ?? toRbeeError(err, this.#o.model);
    }
    if (pullError !== undefined) {
      log.warn({ err: pullError.message }, "ollama could not pull the model, but has it: serving the copy it has");
    }
    await this.#poll();
    this.#timer = setInterval(() => void this.#poll(), this.#o.statsIntervalMs ?? 2000);
    this.#timer.unref();
    log.info(
      {
        engine: "ollama",
        ...this.engine.facts(),
      },
      "ollama serving",
    );
    return { modelId: this.#o.modelId, slots: this.#o.parallel, contextSize: this.#o.ctxSize ?? 4096 };
  }

  async #pull(client: EngineClient, ctx: LoadContext): Promise<void> {
    let last = "";
    let lastPercent = -10;
    try {
      await client.streamNdjson("/api/pull", { model: this.#o.model, stream: true }, { signal: ctx.signal }, (line) => {
        const p = safeParse(PullProgress, line, "ollama /api/pull progress");
        if (!p.ok) throw new RbeeError(p.error.message, { statusCode: 502, code: "bad_gateway" });
        if (p.value.error !== undefined) {
          throw new EngineHttpError({ status: 500, message: p.value.error, body: line }, "/api/pull");
        }
        const percent = p.value.total ? Math.floor((100 * (p.value.completed ?? 0)) / p.value.total) : -1;
        // one line per step, and every 10% of a layer
        if (p.value.status !== last || percent >= lastPercent + 10) {
          ctx.log.info(
            {
              engine: "ollama",
              model: this.#o.model,
              status: p.value.status,
              percent: percent >= 0 ? percent : undefined,
            },
            `ollama pull ${this.#o.model}: ${pullFacts(p.value)}`,
          );
          last = p.value.status ?? "";
          lastPercent = percent;
        }
        return undefined;
      });
    } catch (err) {
      const e = toRbeeError(err, this.#o.model);
      throw new RbeeError(`ollama could not pull '${this.#o.model}': ${e.message}`, {
        statusCode: e instanceof RbeeError ? e.statusCode : 502,
        code: e instanceof RbeeError && e.code === "model_not_found" ? "model_not_found" : "model_pull_failed",
      });
    }
  }

  async #poll(): Promise<void> {
    const client = this.engine.client;
    if (client === undefined) return;
    try {
      const ps = safeParse(PsReply, await client.json("/api/ps", { timeoutMs: 5000 }), "ollama /api/ps");
      if (ps.ok) this.#ps = ps.value.models ?? [];
      const tags = safeParse(TagsReply, await client.json("/api/tags", { timeoutMs: 5000 }), "ollama /api/tags");
      if (tags.ok) this.#tags = (tags.value.models ?? []).map((m) => m.name);
    } catch {
      // Ollama busy or restarting: the heartbeat keeps the last values
    }
  }

  async infer(request: InferRequest, ctx: InferContext): Promise<InferResult> {
    refuseUnmapped(request, "Ollama");
    const client = this.engine.ready();
    const chat = request.messages !== undefined;
    const path = chat ? "/api/chat" : "/api/generate";
    let text = "";
    let tokens = 0;
    let final: GenerateChunk | undefined;
    try {
      await client.streamNdjson(path, ollamaBody(request, this.#o), { signal: ctx.signal }, (line) => {
        const chunk = safeParse(GenerateChunk, line, `ollama ${path} chunk`);
        if (!chunk.ok) throw new RbeeError(chunk.error.message, { statusCode: 502, code: "bad_gateway" });
        if (chunk.value.error !== undefined) {
          throw new EngineHttpError({ status: 500, message: chunk.value.error, body: line }, path);
        }
        const piece = (chat ? chunk.value.message?.content : chunk.value.response) ?? "";
        if (chunk.value.done === true) {
          final = chunk.value;
          if (piece !== "") {
            text += piece;
            return ctx.emit(piece, 1)?.then(() => "stop" as const) ?? "stop";
          }
          return "stop";
        }
        if (piece === "") return undefined;
        text += piece;
        tokens += 1;
        return ctx.emit(piece, 1);
      });
    } catch (err) {
      if (ctx.signal.aborted) return { text, tokensGenerated: tokens, promptTokens: 0, finishReason: "cancelled" };
      throw toRbeeError(err, this.#o.model);
    }
    if (final === undefined) {
      if (ctx.signal.aborted) return { text, tokensGenerated: tokens, promptTokens: 0, finishReason: "cancelled" };
      throw new RbeeError("ollama ended the stream without its final (done) line", {
        statusCode: 502,
        code: "engine_stream_broken",
        retryable: true,
      });
    }
    return {
      text,
      tokensGenerated: final.eval_count ?? tokens,
      promptTokens: final.prompt_eval_count ?? 0,
      finishReason: final.done_reason === "length" ? "length" : "stop",
    };
  }

  async embed(request: EmbedRequest, ctx: { signal: AbortSignal; log: Logger }): Promise<EmbedResponse> {
    const client = this.engine.ready();
    const inputs = typeof request.input === "string" ? [request.input] : request.input;
    const body: Record<string, unknown> = { model: this.#o.model, input: inputs };
    if (this.#o.keepAlive !== undefined) body.keep_alive = keepAliveValue(this.#o.keepAlive);
    let raw: unknown;
    try {
      raw = await client.json("/api/embed", { body, signal: ctx.signal });
    } catch (err) {
      if (ctx.signal.aborted)
        throw new RbeeError("embedding cancelled: the client went away", { statusCode: 499, code: "cancelled" });
      throw toRbeeError(err, this.#o.model);
    }
    const reply = safeParse(EmbedReply, raw, "ollama /api/embed");
    if (!reply.ok) throw new RbeeError(reply.error.message, { statusCode: 502, code: "bad_gateway" });
    if (reply.value.embeddings.length !== inputs.length) {
      throw new RbeeError(`ollama answered ${reply.value.embeddings.length} embeddings for ${inputs.length} inputs`, {
        statusCode: 502,
        code: "bad_gateway",
      });
    }
    return { embeddings: reply.value.embeddings, prompt_tokens: reply.value.prompt_eval_count ?? 0 };
  }

  memory(): { used: number; total: number } {
    // this worker's model only: other models in the same Ollama are not this worker's memory
    const tagged = this.#o.model.includes(":") ? this.#o.model : `${this.#o.model}:latest`;
    const mine = this.#ps.find((m) => m.name === this.#o.model || m.name === tagged);
    return { used: mine?.size_vram ?? 0, total: this.#o.device.memory_total };
  }

  heartbeatExtras(_standard: Readonly<WorkerHeartbeat>): Partial<WorkerHeartbeat> {
    const vram: Record<string, number> = {};
    for (const m of this.#ps) vram[m.name] = m.size_vram ?? 0;
    return { loaded_models: this.#ps.map((m) => m.name), vram_allocations: vram };
  }

  /** The models pulled on this Ollama (`/api/tags`, last read). */
  get pulledModels(): readonly string[] {
    return this.#tags;
  }

  async dispose(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.engine.close();
  }
}

/** The body of `/api/generate` (a prompt, raw) or `/api/chat` (messages) for an InferRequest; always streamed. */
export function ollamaBody(
  request: InferRequest,
  o: { model: string; keepAlive?: string; ctxSize?: number },
): Record<string, unknown> {
  const options: Record<string, unknown> = {
    // rbee's default is no repeat penalty; say so, whatever Ollama's own default is
    repeat_penalty: request.repeat_penalty ?? 1,
  };
  if (request.max_tokens !== undefined) options.num_predict = request.max_tokens;
  Object.assign(options, samplingFields(request));
  if (o.ctxSize !== undefined) options.num_ctx = o.ctxSize;
  const body: Record<string, unknown> = { model: o.model, stream: true, options };
  if (request.messages !== undefined) {
    body.messages = request.messages.map((m) => ({ role: m.role, content: m.content }));
  } else {
    body.prompt = request.prompt ?? "";
    body.raw = true;
  }
  if (request.json_schema !== undefined) body.format = request.json_schema;
  if (o.keepAlive !== undefined) body.keep_alive = keepAliveValue(o.keepAlive);
  return body;
}

/**
 * Ollama's error replies as rbee errors, with Ollama's words: a model it does not have is 404
 * `model_not_found`; "requires more system memory" is `insufficient_memory`; other 4xx are the
 * client's (400); the rest are the engine's (502, 503 retryable).
 */
export function toRbeeError(err: unknown, model: string): Error {
  if (!(err instanceof EngineHttpError)) return err instanceof Error ? err : new Error(String(err));
  const { status, message } = err.reply;
  if (status === 404 || /not found|file does not exist/i.test(message)) {
    return new ModelNotFoundError(
      model,
      `ollama says: ${message}; pull it with \`ollama pull ${model}\` or check the name`,
    );
  }
  if (/requires more system memory|out of memory|insufficient memory|cudaMalloc failed/i.test(message)) {
    return new InsufficientMemoryError(`ollama cannot load '${model}': ${message}`, { model, engine_message: message });
  }
  if (status >= 400 && status < 500) {
    const param = /format|schema/i.test(message) ? "json_schema" : null;
    return new RbeeError(`ollama refused the request: ${message}`, { statusCode: 400, code: "invalid_request", param });
  }
  if (status === 503) {
    return new RbeeError(`ollama is not available: ${message}`, {
      statusCode: 503,
      code: "engine_unavailable",
      retryable: true,
      retryAfterSeconds: 1,
    });
  }
  return new RbeeError(`ollama failed (HTTP ${status}): ${message}`, { statusCode: 502, code: "engine_error" });
}
