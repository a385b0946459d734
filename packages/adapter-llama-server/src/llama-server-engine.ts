import { randomBytes } from "node:crypto";
import {
  type ChatMessage,
  DEFAULT_ENGINE_START_TIMEOUT_MS,
  type Device,
  defaultContextSize,
  type EmbedRequest,
  type EmbedResponse,
  type FinishReason,
  type InferRequest,
  PromptTooLongError,
  parseJson,
  RbeeError,
  safeParse,
  type WorkerCapability,
  type WorkerGroupSpawn,
  type WorkerHeartbeat,
} from "@rbee/contract";
import { GgufFormatError, inspectGguf, readGgufHeader } from "@rbee/gguf";
import { freePort, type Logger } from "@rbee/server-kit";
import {
  chooseThreadCount,
  EngineClient,
  type EngineGuard,
  EngineHttpError,
  EngineProcess,
  EngineStartError,
  type InferContext,
  type InferResult,
  type LoadContext,
  type LoadedModel,
  modelFileSize,
  processRss,
  readEngineError,
  refuseUnmapped,
  samplingFields,
  type WorkerEngine,
} from "@rbee/worker-kit";
import { z } from "zod";
import { EngineStatsPoller } from "./engine-stats.js";
import { LLAMA_SERVER_HINT } from "./find-llama-server.js";
import { coordinatorArgs, coordinatorHeartbeat, waitForShards } from "./group-coordinator.js";
import { llamaServerArgs } from "./llama-server-args.js";
import { ApplyTemplateReply, CompletionChunk, PropsReply } from "./llama-server-replies.js";

export { DEFAULT_ENGINE_START_TIMEOUT_MS };

export interface LlamaServerEngineOptions {
  /** The llama-server binary. */
  binary: string;
  modelPath: string;
  modelId: string;
  device: Device;
  /** Compute threads; default chosen as the llm worker chooses them (chooseThreadCount). */
  threads?: number;
  /** Tokens of context per slot; default the model's training context, at most LLAMA_CPP_DEFAULTS.maxContextSize. */
  ctxSize?: number;
  /** Requests generated at the same time (llama-server's --parallel, continuously batched). */
  parallel: number;
  /** Tokens per decode batch for prompt processing (llama-server's --batch-size). */
  batchSize?: number;
  /** Serve embeddings too (default true). */
  embeddings?: boolean;
  /** Give up when llama-server is not ready after this long; default DEFAULT_ENGINE_START_TIMEOUT_MS. */
  startTimeoutMs?: number;
  /** After SIGTERM, how long llama-server may take to exit before SIGKILL; default 5 s. */
  stopGraceMs?: number;
  /** How often llama-server's /metrics is read for heartbeats; default 1 s. */
  statsIntervalMs?: number;
  /** How llama-server is tied to the adapter's life (default: the best this system has). */
  guard?: EngineGuard;
  /** More llama-server arguments, passed as they are after rbee's own. */
  extraArgs?: readonly string[];
  /** Coordinate a worker group: run the model over its shards' RPC servers. */
  group?: WorkerGroupSpawn;
}

const OaiEmbeddingsReply = z.looseObject({
  data: z.array(z.looseObject({ index: z.number().int().nonnegative(), embedding: z.array(z.number()) })),
  usage: z.looseObject({ prompt_tokens: z.number().int().nonnegative() }).optional(),
});

/** The pooling the model declares for embeddings (`<arch>.pooling_type`), if any. */
function declaresPooling(metadata: Map<string, unknown>, arch: string): boolean {
  const v = metadata.get(`${arch}.pooling_type`);
  return v !== undefined && Number(v) > 0;
}

/**
 * How llama-server is pointed at the worker's device: on the CPU it offloads nothing (`--device none`,
 * even when the build has a GPU backend); on a GPU only that GPU is made visible, and llama.cpp
 * offloads what fits. A declared (simulated) GPU runs on the CPU.
 */
export function deviceLaunch(device: Device): { args: string[]; env: Record<string, string> } {
  const index = device.id.split(":")[1] ?? "0";
  if (device.simulated || device.kind === "cpu") return { args: ["--device", "none"], env: {} };
  switch (device.kind) {
    case "cuda":
      return { args: [], env: { CUDA_VISIBLE_DEVICES: index } };
    case "rocm":
      return { args: [], env: { HIP_VISIBLE_DEVICES: index, GGML_VK_VISIBLE_DEVICES: index } };
    case "vulkan":
      return { args: [], env: { GGML_VK_VISIBLE_DEVICES: index } };
    case "metal":
      return { args: [], env: {} };
  }
}

function finishReasonOf(chunk: CompletionChunk): FinishReason {
  return chunk.stop_type === "limit" || chunk.truncated === true ? "length" : "stop";
}

/** The request's stop string that ended generation (llama-server's `stopping_word`), for Anthropic's stop_sequence. */
function stopSequenceOf(chunk: CompletionChunk, request: InferRequest): { stopSequence?: string } {
  if (chunk.stop_type !== "word" || !chunk.stopping_word) return {};
  const asked = request.stop === undefined ? [] : typeof request.stop === "string" ? [request.stop] : request.stop;
  return asked.includes(chunk.stopping_word) ? { stopSequence: chunk.stopping_word } : {};
}

/**
 * llama.cpp's own server behind the worker contract. The adapter starts llama-server on a free
 * loopback port (tied to its own life: see EngineProcess), serves `/v1/infer` through llama-server's
 * native streaming `/completion` (chats formatted with the model's own template by `/apply-template`),
 * `/v1/embed` through `/v1/embeddings`, and builds its heartbeat from llama-server's `/metrics`.
 * When llama-server dies, the worker stops and exits non-zero, so its hive restarts the pair.
 */
export class LlamaServerEngine implements WorkerEngine {
  readonly workerType = "llama-server";
  readonly implementation = "llama-server";
  readonly capabilities: readonly WorkerCapability[];

  #o: LlamaServerEngineOptions;
  #version = "unknown";
  #process: EngineProcess | undefined;
  #client: EngineClient | undefined;
  #stats: EngineStatsPoller | undefined;
  #settings: { threads: number; contextPerSlot: number; port: number; args: string[] } | undefined;
  #disposed = false;

  constructor(options: LlamaServerEngineOptions) {
    this.#o = options;
    this.capabilities =
      options.embeddings === false
        ? ["text-generation", "chat", "json_schema"]
        : ["text-generation", "chat", "json_schema", "embeddings"];
  }

  /** llama-server's build (`/props` build_info, as `llama-server --version` prints it: b<number>-<commit>). */
  get version(): string {
    return this.#version;
  }

  /** The engine process, once load() started it (for tests and benchmarks: its pid, its log). */
  get engineProcess(): EngineProcess | undefined {
    return this.#process;
  }

  /** What the adapter started llama-server with. */
  get settings(): { threads: number; contextPerSlot: number; port: number; args: string[] } | undefined {
    return this.#settings;
  }

  async load(ctx: LoadContext): Promise<LoadedModel> {
    const { log } = ctx;
    const size = modelFileSize(this.#o.modelPath);
    let trainContext = 0;
    let pooling = false;
    try {
      const { header } = await readGgufHeader(this.#o.modelPath);
      const info = inspectGguf(header, size);
      trainContext = info.context_length;
      pooling = declaresPooling(header.metadata, info.architecture);
    } catch (err) {
      if (err instanceof GgufFormatError) {
        throw new RbeeError(
          `${this.#o.modelPath} is not a GGUF model llama.cpp can load: ${err.message}; pass a .gguf file with --model`,
          { statusCode: 400, code: "model_not_gguf" },
        );
      }
      throw err;
    }
    const choice =
      this.#o.threads !== undefined
        ? { threads: this.#o.threads, reason: "--threads" }
        : chooseThreadCount({ modelBytes: size });
    const contextPerSlot = this.#o.ctxSize ?? defaultContextSize(trainContext);
    if (this.#o.ctxSize !== undefined && trainContext > 0 && this.#o.ctxSize > trainContext) {
      log.warn(
        { ctx_size: this.#o.ctxSize, train_context: trainContext },
        "context larger than the model was trained on",
      );
    }
    const host = "127.0.0.1";
    const group = this.#o.group;
    // a coordinator's llama-server aborts when a shard goes away (llama.cpp's RPC client does); without
    // GGML_NO_BACKTRACE it first runs gdb for a backtrace, which took 5 s here before it exited
    const device = group
      ? { args: coordinatorArgs(group), env: { GGML_NO_BACKTRACE: "1" } }
      : deviceLaunch(this.#o.device);
    if (group)
      await waitForShards(group, {
        timeoutMs: this.#o.startTimeoutMs ?? DEFAULT_ENGINE_START_TIMEOUT_MS,
        signal: ctx.signal,
        log,
      });
    // llama-server takes requests only with this key (in its environment, not on its command line,
    // where every local user could read it): only the adapter can use it
    const apiKey = randomBytes(24).toString("base64url");
    log.info(
      {
        engine: "llama-server",
        binary: this.#o.binary,
        path: this.#o.modelPath,
        bytes: size,
        threads: choice.threads,
        threads_reason: choice.reason,
        parallel: this.#o.parallel,
        context_per_slot: contextPerSlot,
        train_context: trainContext,
      },
      "starting llama-server",
    );
    // a free port may be taken by another process before llama-server binds it: try another, twice
    for (let attempt = 1; ; attempt++) {
      const port = await freePort(host);
      const args = llamaServerArgs({
        modelPath: this.#o.modelPath,
        modelId: this.#o.modelId,
        host,
        port,
        parallel: this.#o.parallel,
        contextPerSlot,
        threads: choice.threads,
        embeddings: this.#o.embeddings !== false,
        // a generative model declares no pooling: embed it by its last token, as the llm worker does
        pooling: pooling ? undefined : "last",
        batchSize: this.#o.batchSize,
        extraArgs: [...device.args, ...(this.#o.extraArgs ?? [])],
      });
      this.#settings = { threads: choice.threads, contextPerSlot, port, args };
      const base = `http://${host}:${port}`;
      this.#client = new EngineClient(base, "llama-server", apiKey);
      this.#process = new EngineProcess({
        name: "llama-server",
        binary: this.#o.binary,
        args,
        env: { ...device.env, LLAMA_API_KEY: apiKey },
        binaryHint: LLAMA_SERVER_HINT,
        readyUrl: `${base}/health`,
        startTimeoutMs: this.#o.startTimeoutMs ?? DEFAULT_ENGINE_START_TIMEOUT_MS,
        stopGraceMs: this.#o.stopGraceMs,
        guard: this.#o.guard,
        log: log.child({ component: "engine" }),
        onUnexpectedExit: (error) => ctx.fail(error),
      });
      try {
        await this.#process.start(ctx.signal);
        break;
      } catch (err) {
        const portTaken =
          err instanceof EngineStartError &&
          err.facts.logTail.some((line) => /couldn't bind HTTP server socket/.test(line));
        if (!portTaken || attempt >= 3 || ctx.signal.aborted) throw err;
        log.warn({ port, attempt }, "llama-server's port was taken before it bound it; trying another");
      }
    }
    const client = this.#client as EngineClient;
    const engine = this.#process as EngineProcess;
    const props = safeParse(PropsReply, await client.json("/props", { timeoutMs: 10_000 }), "llama-server /props");
    if (props.ok) {
      this.#version = props.value.build_info ?? this.#version;
      const nCtx = props.value.default_generation_settings?.n_ctx;
      if (nCtx !== undefined && nCtx !== contextPerSlot) {
        log.warn({ asked: contextPerSlot, got: nCtx }, "llama-server chose another context per slot");
      }
    } else log.warn({ err: props.error.message }, "llama-server /props unreadable; version unknown");
    this.#stats = new EngineStatsPoller(client, log, this.#o.statsIntervalMs ?? 1000, () => engine.pid);
    this.#stats.start();
    log.info(
      {
        engine: "llama-server",
        engine_pid: engine.pid,
        guard: engine.guard,
        version: this.#version,
        engine_url: client.baseUrl,
      },
      "llama-server serving",
    );
    return { modelId: this.#o.modelId, slots: this.#o.parallel, contextSize: contextPerSlot };
  }

  async infer(request: InferRequest, ctx: InferContext): Promise<InferResult> {
    refuseUnmapped(request, "llama-server");
    const client = this.#ready();
    const prompt =
      request.messages !== undefined ? await this.#applyTemplate(client, request.messages, ctx.signal) : request.prompt;
    let text = "";
    let tokens = 0;
    let promptTokens = 0;
    let final: CompletionChunk | undefined;
    try {
      await client.stream("/completion", completionBody(request, prompt ?? ""), { signal: ctx.signal }, (message) => {
        const chunk = readChunk(message.data);
        if (chunk.tokens_evaluated !== undefined) promptTokens = chunk.tokens_evaluated;
        const predicted = chunk.tokens_predicted ?? tokens;
        const piece = chunk.content ?? "";
        const delta = Math.max(0, predicted - tokens);
        tokens = Math.max(tokens, predicted);
        let wait: Promise<unknown> | undefined;
        if (piece !== "" || delta > 0) {
          text += piece;
          wait = ctx.emit(piece, delta);
        }
        if (chunk.stop === true) {
          final = chunk;
          return "stop";
        }
        return wait;
      });
    } catch (err) {
      if (ctx.signal.aborted) return { text, tokensGenerated: tokens, promptTokens, finishReason: "cancelled" };
      throw toRbeeError(err);
    }
    if (final === undefined) {
      if (ctx.signal.aborted) return { text, tokensGenerated: tokens, promptTokens, finishReason: "cancelled" };
      throw new RbeeError("llama-server ended the stream without its final chunk", {
        statusCode: 502,
        code: "engine_stream_broken",
        retryable: true,
      });
    }
    return {
      text,
      tokensGenerated: tokens,
      promptTokens,
      cachedTokens: final.timings?.cache_n,
      finishReason: finishReasonOf(final),
      ...stopSequenceOf(final, request),
    };
  }

  async embed(request: EmbedRequest, ctx: { signal: AbortSignal; log: Logger }): Promise<EmbedResponse> {
    const client = this.#ready();
    const inputs = typeof request.input === "string" ? [request.input] : request.input;
    let raw: unknown;
    try {
      raw = await client.json("/v1/embeddings", {
        body: { input: inputs, encoding_format: "float" },
        signal: ctx.signal,
      });
    } catch (err) {
      if (ctx.signal.aborted)
        throw new RbeeError("embedding cancelled: the client went away", { statusCode: 499, code: "cancelled" });
      throw toRbeeError(err);
    }
    const reply = safeParse(OaiEmbeddingsReply, raw, "llama-server embeddings");
    if (!reply.ok) throw new RbeeError(reply.error.message, { statusCode: 502, code: "bad_gateway" });
    const vectors: number[][] = new Array(inputs.length);
    for (const d of reply.value.data) vectors[d.index] = d.embedding;
    if (vectors.some((v) => v === undefined) || reply.value.data.length !== inputs.length) {
      throw new RbeeError(`llama-server answered ${reply.value.data.length} embeddings for ${inputs.length} inputs`, {
        statusCode: 502,
        code: "bad_gateway",
      });
    }
    return { embeddings: vectors, prompt_tokens: reply.value.usage?.prompt_tokens ?? 0 };
  }

  memory(): { used: number; total: number } {
    return { used: this.#engineRss(), total: this.#o.device.memory_total };
  }

  heartbeatExtras(standard: Readonly<WorkerHeartbeat>): Partial<WorkerHeartbeat> {
    const extras: Partial<WorkerHeartbeat> = {
      loaded_models: [this.#o.modelId],
      memory_used: (standard.memory_used ?? 0) + this.#engineRss(),
      ...(this.#o.group ? coordinatorHeartbeat(this.#o.group, standard.worker_id) : {}),
    };
    const stats = this.#stats?.stats;
    if (stats && stats.at > 0) {
      extras.batch_size = stats.processing;
      extras.queue_depth = (standard.queue_depth ?? 0) + stats.deferred;
      extras.throughput_tokens_per_second = stats.tokensPerSecond;
    }
    return extras;
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#stats?.stop();
    await this.#process?.stop();
  }

  /** llama-server's resident memory: /proc now on Linux, else the last poll's (`ps`). */
  #engineRss(): number {
    if (this.#disposed) return 0;
    return processRss(this.#process?.pid) || (this.#stats?.stats.rss ?? 0);
  }

  #ready(): EngineClient {
    if (this.#client === undefined || this.#process?.state !== "ready" || this.#disposed) {
      throw new RbeeError("llama-server is not running", { statusCode: 503, code: "not_ready", retryable: true });
    }
    return this.#client;
  }

  async #applyTemplate(client: EngineClient, messages: ChatMessage[], signal: AbortSignal): Promise<string> {
    let raw: unknown;
    try {
      raw = await client.json("/apply-template", { body: { messages }, signal });
    } catch (err) {
      throw toRbeeError(err);
    }
    const reply = safeParse(ApplyTemplateReply, raw, "llama-server /apply-template");
    if (!reply.ok) throw new RbeeError(reply.error.message, { statusCode: 502, code: "bad_gateway" });
    return reply.value.prompt;
  }
}

/** The body of llama-server's native `/completion` for an InferRequest; always streamed. */
export function completionBody(request: InferRequest, prompt: string): Record<string, unknown> {
  const body: Record<string, unknown> = {
    prompt,
    stream: true,
    cache_prompt: true,
    n_predict: request.max_tokens ?? -1,
    // rbee's default is no repeat penalty; say so, whatever llama-server's own default is
    repeat_penalty: request.repeat_penalty ?? 1,
  };
  Object.assign(body, samplingFields(request));
  if (request.json_schema !== undefined) body.json_schema = request.json_schema;
  return body;
}

/** One SSE chunk of `/completion`, read at the boundary: not JSON, the wrong shape, or an error → RbeeError. */
export function readChunk(data: string): CompletionChunk {
  const json = parseJson(data);
  if (!json.ok) {
    throw new RbeeError(`llama-server sent a stream chunk that is not JSON: ${data.slice(0, 120)}`, {
      statusCode: 502,
      code: "bad_gateway",
    });
  }
  if (typeof json.value !== "object" || json.value === null || Array.isArray(json.value)) {
    throw new RbeeError(`llama-server sent a stream chunk that is not an object: ${data.slice(0, 120)}`, {
      statusCode: 502,
      code: "bad_gateway",
    });
  }
  const value = json.value as Record<string, unknown>;
  // the hot path (one chunk per token): plain checks of the fields read; the schema names what is wrong
  if (
    (value.content !== undefined && typeof value.content !== "string") ||
    (value.stop !== undefined && typeof value.stop !== "boolean") ||
    (value.tokens_predicted !== undefined && !Number.isInteger(value.tokens_predicted)) ||
    (value.tokens_evaluated !== undefined && !Number.isInteger(value.tokens_evaluated)) ||
    value.stop === true
  ) {
    const chunk = safeParse(CompletionChunk, value, "llama-server stream chunk");
    if (!chunk.ok) throw new RbeeError(chunk.error.message, { statusCode: 502, code: "bad_gateway" });
  }
  if (value.error !== undefined) {
    const reply = readEngineError(500, JSON.stringify({ error: value.error }));
    const code = (value.error as { code?: unknown }).code;
    throw toRbeeError(new EngineHttpError({ ...reply, status: typeof code === "number" ? code : 500 }, "/completion"));
  }
  return value as CompletionChunk;
}

/** llama-server's error replies as rbee errors: its 4xx are the client's (400), the rest the engine's (502/503). */
export function toRbeeError(err: unknown): Error {
  if (!(err instanceof EngineHttpError)) return err instanceof Error ? err : new Error(String(err));
  const { status, message, type, body } = err.reply;
  if (type === "exceed_context_size_error") {
    const e = (body as { error?: { n_prompt_tokens?: unknown; n_ctx?: unknown } } | undefined)?.error;
    const prompt = Number(e?.n_prompt_tokens);
    const ctx = Number(e?.n_ctx);
    if (Number.isFinite(prompt) && Number.isFinite(ctx)) return new PromptTooLongError(prompt, ctx);
    return new RbeeError(`${message}: shorten the prompt or start the worker with a larger --ctx-size`, {
      statusCode: 400,
      code: "context_length_exceeded",
      param: "prompt",
    });
  }
  if (status >= 400 && status < 500) {
    const param = /schema|grammar/i.test(message) ? "json_schema" : null;
    return new RbeeError(`llama-server refused the request: ${message}`, {
      statusCode: 400,
      code: "invalid_request",
      param,
    });
  }
  if (status === 501) {
    return new RbeeError(`llama-server cannot do this: ${message}`, { statusCode: 400, code: "unsupported" });
  }
  if (status === 503) {
    return new RbeeError(`llama-server is not available: ${message}`, {
      statusCode: 503,
      code: "engine_unavailable",
      retryable: true,
      retryAfterSeconds: 1,
    });
  }
  return new RbeeError(`llama-server failed (HTTP ${status}): ${message}`, { statusCode: 502, code: "engine_error" });
}
