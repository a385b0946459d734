import { createRequire } from "node:module";
import {
  type Device,
  defaultContextSize,
  type EmbedRequest,
  type EmbedResponse,
  type FinishReason,
  type InferRequest,
  PromptTooLongError,
  RbeeError,
  type TokenLogprob,
  ValidationError,
  type WorkerCapability,
} from "@rbee/contract";
import {
  chooseThreadCount,
  type InferContext,
  type InferResult,
  type LoadContext,
  type LoadedModel,
  modelFileSize,
  type WorkerEngine,
} from "@rbee/worker-kit";
import {
  getLlama,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaGrammar,
  LlamaGrammarEvaluationState,
  LlamaLogLevel,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import {
  type ChatPromptFormatter,
  createChatPromptFormatter,
  toChatFunctions,
  toChatHistory,
  tokenizePrompt,
} from "./chat-prompt.js";
import { checkJsonSchema } from "./check-json-schema.js";
import { takePrewarmed } from "./prewarm.js";
import { checkPromptSize, maxTokenBytes } from "./prompt-size.js";
import { SequencePool } from "./sequence-pool.js";
import { StopMatcher } from "./stop-matcher.js";
import { TokenTextDecoder } from "./token-text.js";
import { generateWithTools } from "./tool-calls.js";

const require = createRequire(import.meta.url);
const VERSION = (require("../package.json") as { version: string }).version;

/** llama.cpp's sampling defaults, which its server and Ollama also use. */
export const SAMPLING_DEFAULTS = { temperature: 0.8, top_k: 40, top_p: 0.95, min_p: 0.05 } as const;
/** Tokens of history the repeat penalties look at. */
const PENALTY_WINDOW = 64;

export interface LlmEngineOptions {
  modelPath: string;
  modelId: string;
  device: Device;
  /** Compute threads; default chosen from the cores, the load and the model's size. */
  threads?: number;
  /** Tokens of context per parallel sequence; default the model's training context, at most 4096. */
  ctxSize?: number;
  /** Requests generated at the same time, as sequences of one batched context. */
  parallel: number;
  /** Tokens per decode batch (prompt processing); default min(512, ctxSize). */
  batchSize?: number;
}

type GpuChoice = false | "cuda" | "vulkan" | "metal";

/** Which node-llama-cpp backend serves a device, and the variable that makes only that GPU visible. */
function backendFor(device: Device): { gpu: GpuChoice; visibleEnv?: [string, string] } {
  const index = device.id.split(":")[1] ?? "0";
  // a declared GPU (RBEE_DEVICES, for tests and demos) has no hardware behind it: its work runs on the CPU
  if (device.simulated) return { gpu: false };
  switch (device.kind) {
    case "cpu":
      return { gpu: false };
    case "cuda":
      return { gpu: "cuda", visibleEnv: ["CUDA_VISIBLE_DEVICES", index] };
    case "metal":
      return { gpu: "metal" };
    case "vulkan":
      return { gpu: "vulkan", visibleEnv: ["GGML_VK_VISIBLE_DEVICES", index] };
    case "rocm":
      // node-llama-cpp ships no ROCm build; AMD GPUs run through Vulkan
      return { gpu: "vulkan", visibleEnv: ["GGML_VK_VISIBLE_DEVICES", index] };
  }
}

/** A generated token's log-probability and the `top` most likely tokens at its position. */
function tokenLogprob(
  model: LlamaModel,
  token: Token,
  probabilities: Map<Token, number>,
  top: number,
  before: readonly Token[],
): TokenLogprob {
  const entry = (t: Token, p: number) => {
    // detokenized after the tokens before it, so that a word's leading space is kept
    const text = model.detokenize([t], true, before);
    // a probability of 0 (a token the sampler ruled out) has no finite logarithm: JSON cannot say -Infinity
    return { token: text, logprob: p > 0 ? Math.log(p) : -9999, bytes: [...Buffer.from(text, "utf8")] };
  };
  const alternatives: TokenLogprob["top_logprobs"] = [];
  for (const [t, p] of probabilities) {
    if (alternatives.length >= top) break;
    alternatives.push(entry(t, p));
  }
  return { ...entry(token, probabilities.get(token) ?? 0), top_logprobs: alternatives };
}

/**
 * The bespoke llm worker: llama.cpp in-process through node-llama-cpp. One context holds one
 * sequence per parallel slot; node-llama-cpp batches the sequences' tokens into shared decodes.
 */
export class LlmEngine implements WorkerEngine {
  readonly workerType = "llm";
  readonly implementation = "rbee-llm";
  readonly version = VERSION;
  readonly capabilities: readonly WorkerCapability[] = [
    "text-generation",
    "chat",
    "json_schema",
    "tools",
    "embeddings",
  ];

  #o: LlmEngineOptions;
  #llama: Llama | undefined;
  #model: LlamaModel | undefined;
  #context: LlamaContext | undefined;
  #pool: SequencePool | undefined;
  #chat: ChatPromptFormatter | undefined;
  #contextSize = 0;
  /** No token stands for more bytes of text than this (see prompt-size.ts); undefined when unknown. */
  #maxTokenBytes: number | undefined;
  #threads = 1;
  #grammars = new Map<string, Promise<LlamaGrammar>>();
  #embedding: Promise<LlamaEmbeddingContext> | undefined;
  #disposed = false;

  constructor(options: LlmEngineOptions) {
    this.#o = options;
  }

  /** What the engine settled on at load, for logs and benchmarks. */
  get settings(): { threads: number; contextSize: number; chatFormat: string } {
    return { threads: this.#threads, contextSize: this.#contextSize, chatFormat: this.#chat?.name ?? "" };
  }

  async load({ signal, log }: LoadContext): Promise<LoadedModel> {
    const size = modelFileSize(this.#o.modelPath);
    const backend = backendFor(this.#o.device);
    if (backend.visibleEnv) process.env[backend.visibleEnv[0]] = backend.visibleEnv[1];
    const llamaLog = log.child({ component: "llama.cpp" });
    const logger = (level: LlamaLogLevel, message: string) => {
      const text = message.trim();
      if (text === "") return;
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) llamaLog.error(text);
      else if (level === LlamaLogLevel.warn) llamaLog.warn(text);
      else llamaLog.debug(text);
    };
    const ready = backend.gpu === false ? await takePrewarmed()?.catch(() => undefined) : undefined;
    if (ready) {
      ready.logLevel = LlamaLogLevel.warn;
      ready.logger = logger;
    }
    this.#llama = ready ?? (await getLlama({ gpu: backend.gpu, build: "never", logLevel: LlamaLogLevel.warn, logger }));
    const choice =
      this.#o.threads !== undefined
        ? { threads: this.#o.threads, reason: "--threads" }
        : chooseThreadCount({ modelBytes: size });
    this.#threads = choice.threads;
    log.info(
      {
        path: this.#o.modelPath,
        bytes: size,
        device: this.#o.device.id,
        threads: choice.threads,
        threads_reason: choice.reason,
      },
      "loading model",
    );
    this.#model = await this.#llama.loadModel({
      modelPath: this.#o.modelPath,
      gpuLayers: backend.gpu === false ? 0 : "auto",
      loadSignal: signal,
    });
    const train = this.#model.trainContextSize;
    const requested = this.#o.ctxSize ?? defaultContextSize(train);
    if (this.#o.ctxSize !== undefined && this.#o.ctxSize > train) {
      log.warn({ ctx_size: this.#o.ctxSize, train_context: train }, "context larger than the model was trained on");
    }
    this.#context = await this.#model.createContext({
      contextSize: requested,
      sequences: this.#o.parallel,
      threads: this.#threads,
      batchSize: this.#o.batchSize ?? Math.min(512, requested),
      createSignal: signal,
    });
    this.#contextSize = this.#context.contextSize;
    this.#pool = new SequencePool(this.#context, this.#o.parallel);
    this.#maxTokenBytes = maxTokenBytes(this.#model);
    this.#chat = createChatPromptFormatter(this.#model);
    log.info(
      {
        context_size: this.#contextSize,
        parallel: this.#o.parallel,
        chat_format: this.#chat.name,
        train_context: train,
      },
      "model loaded",
    );
    return { modelId: this.#o.modelId, slots: this.#o.parallel, contextSize: this.#contextSize };
  }

  async infer(request: InferRequest, ctx: InferContext): Promise<InferResult> {
    const model = this.#loaded();
    const pool = this.#pool as SequencePool;
    let promptTokens: Token[];
    let stopStrings: string[] = [];
    let stopTokens: readonly Token[] = [];
    // a prompt that cannot fit is refused before it is tokenized, and a large one is looked at in
    // chunks, so that /health and heartbeats keep answering meanwhile
    const texts =
      request.messages !== undefined
        ? request.messages.map((m) => m.content)
        : [request.prompt ?? "", ...(request.suffix !== undefined ? [request.suffix] : [])];
    await checkPromptSize(model, texts, this.#contextSize, this.#maxTokenBytes, ctx.signal);
    const tools = request.tools !== undefined && request.tools.length > 0 ? request.tools : undefined;
    const callTools = tools !== undefined && request.tool_choice !== "none";
    if (callTools && request.json_schema !== undefined)
      throw new ValidationError(
        "json_schema cannot be combined with tools that may be called; send tool_choice 'none', or describe the output as a tool",
        "json_schema",
      );
    if (callTools && request.logprobs !== undefined)
      throw new ValidationError("logprobs are not available for turns that may call tools", "logprobs");
    if (tools !== undefined)
      for (const [i, t] of tools.entries())
        if (t.parameters !== undefined) await this.#grammarFor(t.parameters, `tools[${i}].parameters`);
    const functions = tools === undefined ? undefined : toChatFunctions(tools);
    if (request.messages !== undefined) {
      const chat = (this.#chat as ChatPromptFormatter).format(request.messages, functions);
      promptTokens = chat.tokens;
      stopStrings = chat.stopStrings.slice();
      stopTokens = chat.stopTokens;
    } else if (request.suffix !== undefined) {
      promptTokens = this.#infillPrompt(request.prompt ?? "", request.suffix);
    } else {
      promptTokens = tokenizePrompt(model, request.prompt ?? "");
    }
    if (promptTokens.length === 0)
      throw new ValidationError("the prompt is empty and the model has no BOS token to start from", "prompt");
    if (promptTokens.length >= this.#contextSize) throw new PromptTooLongError(promptTokens.length, this.#contextSize);
    if (request.stop !== undefined)
      stopStrings.push(...(typeof request.stop === "string" ? [request.stop] : request.stop));
    const grammar = request.json_schema === undefined ? undefined : await this.#grammarFor(request.json_schema);
    // a JSON grammar lets whitespace follow the value; its own trigger (blank lines) ends the output
    if (grammar)
      for (const t of grammar.stopGenerationTriggers)
        if (typeof t !== "object" || !Array.isArray(t)) stopStrings.push(t.toString());
    if (ctx.signal.aborted)
      return { text: "", tokensGenerated: 0, promptTokens: promptTokens.length, finishReason: "cancelled" };

    const lease = await pool.acquire(promptTokens);
    try {
      if (callTools && request.messages !== undefined && functions !== undefined) {
        const history = toChatHistory(request.messages);
        if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
        const userStops =
          request.stop === undefined ? [] : typeof request.stop === "string" ? [request.stop] : request.stop;
        const result = await generateWithTools({
          request,
          ctx,
          sequence: lease.sequence,
          wrapper: (this.#chat as ChatPromptFormatter).wrapper,
          history,
          functions,
          promptTokens: promptTokens.length,
          stopStrings: userStops,
          sampling: this.#sampling(request),
        });
        return {
          text: result.text,
          tokensGenerated: result.tokensGenerated,
          promptTokens: promptTokens.length,
          cachedTokens: lease.reused,
          finishReason: result.finishReason,
          toolCalls: result.toolCalls,
        };
      }
      return await this.#generate(
        request,
        ctx,
        promptTokens,
        lease.reused,
        stopStrings,
        stopTokens,
        grammar,
        lease.sequence,
      );
    } finally {
      lease.release();
    }
  }

  async #generate(
    request: InferRequest,
    ctx: InferContext,
    promptTokens: Token[],
    reused: number,
    stopStrings: string[],
    stopTokens: readonly Token[],
    grammar: LlamaGrammar | undefined,
    sequence: LlamaContextSequence,
  ): Promise<InferResult> {
    const model = this.#loaded();
    const pool = this.#pool as SequencePool;
    const maxTokens = request.max_tokens ?? Number.POSITIVE_INFINITY;
    const limit = this.#contextSize;
    const decoder = new TokenTextDecoder(model, promptTokens);
    const stops = new StopMatcher(stopStrings);
    const generated: Token[] = [];
    const stopSet = new Set(stopTokens);
    let text = "";
    let pendingTokens = 0;
    let finishReason: FinishReason = "stop";
    const temperature = request.temperature ?? SAMPLING_DEFAULTS.temperature;
    const penalize =
      (request.repeat_penalty !== undefined && request.repeat_penalty !== 1) ||
      (request.presence_penalty ?? 0) !== 0 ||
      (request.frequency_penalty ?? 0) !== 0;
    const evaluateOptions = {
      temperature,
      topK: request.top_k ?? SAMPLING_DEFAULTS.top_k,
      topP: request.top_p ?? SAMPLING_DEFAULTS.top_p,
      minP: request.min_p ?? SAMPLING_DEFAULTS.min_p,
      seed: request.seed,
      repeatPenalty: penalize
        ? {
            punishTokens: () => generated.slice(-PENALTY_WINDOW),
            maxPunishTokens: PENALTY_WINDOW,
            penalty: request.repeat_penalty ?? 1,
            presencePenalty: request.presence_penalty ?? 0,
            frequencyPenalty: request.frequency_penalty ?? 0,
          }
        : undefined,
      grammarEvaluationState: grammar ? new LlamaGrammarEvaluationState({ model, grammar }) : undefined,
    };
    const topLogprobs = request.logprobs;
    const logprobs: TokenLogprob[] | undefined = topLogprobs === undefined ? undefined : [];
    let pendingLogprobs: TokenLogprob[] = [];
    // token probabilities cost a pass over the vocabulary: only when asked for
    const iterator: AsyncGenerator<Token | { token: Token; probabilities: Map<Token, number> }, void, void> =
      topLogprobs === undefined
        ? sequence.evaluate(promptTokens.slice(reused), evaluateOptions)
        : sequence.evaluateWithMetadata(promptTokens.slice(reused), { probabilities: true }, evaluateOptions);
    let stopped = false;
    let next: Promise<IteratorResult<Token | { token: Token; probabilities: Map<Token, number> }, void>> | undefined =
      iterator.next();
    const send = (piece: string, tokens: number) => {
      if (logprobs === undefined) return ctx.emit(piece, tokens);
      const these = pendingLogprobs;
      pendingLogprobs = [];
      return ctx.emit(piece, tokens, these);
    };
    try {
      while (next !== undefined) {
        const step = await next;
        next = undefined;
        if (step.done) break;
        const token = typeof step.value === "number" ? step.value : step.value.token;
        if (ctx.signal.aborted) {
          finishReason = "cancelled";
          break;
        }
        if (stopSet.has(token)) break;
        generated.push(token);
        pendingTokens++;
        if (logprobs !== undefined && typeof step.value === "object") {
          const before = generated.length > 1 ? generated.slice(-5, -1) : promptTokens.slice(-4);
          const entry = tokenLogprob(model, token, step.value.probabilities, topLogprobs ?? 0, before);
          logprobs.push(entry);
          pendingLogprobs.push(entry);
        }
        const atLimit = generated.length >= maxTokens || promptTokens.length + generated.length >= limit;
        // Ask for the next token before handling this one: the engine decodes on its own thread while
        // this token is detokenized and written to the client, so that work costs the stream no time.
        // Not while a new request erases its sequence's old tail: see SequencePool.erased.
        const erasing = pool.erased();
        if (!atLimit && erasing === undefined) next = iterator.next();
        const piece = decoder.push(token);
        if (piece !== "") {
          const { emit, stopped: hit } = stops.push(piece);
          if (emit !== "") {
            text += emit;
            const wait = send(emit, pendingTokens);
            pendingTokens = 0;
            if (wait) await wait;
          }
          if (hit) {
            stopped = true;
            break;
          }
        }
        if (atLimit) {
          finishReason = "length";
          break;
        }
        if (erasing !== undefined) {
          await erasing;
          next = iterator.next();
        }
      }
    } finally {
      // a token asked for ahead must settle before the generator can be closed
      await next?.catch(() => undefined);
      await iterator.return?.();
    }
    if (!stopped) {
      const rest = stops.push(decoder.flush()).emit + stops.flush();
      if (rest !== "" || pendingTokens > 0) {
        text += rest;
        const wait = send(rest, pendingTokens);
        if (wait) await wait;
      }
    } else if (pendingTokens > 0) {
      await send("", pendingTokens);
    }
    if (grammar?.trimWhitespaceSuffix) text = text.trimEnd();
    // the caller's own stop string (not one of the chat template's) is reported, for Anthropic's stop_sequence
    const asked = request.stop === undefined ? [] : typeof request.stop === "string" ? [request.stop] : request.stop;
    const stopSequence =
      stopped && stops.matched !== undefined && asked.includes(stops.matched) ? stops.matched : undefined;
    return {
      logprobs,
      text,
      tokensGenerated: generated.length,
      promptTokens: promptTokens.length,
      cachedTokens: reused,
      finishReason,
      ...(stopSequence === undefined ? {} : { stopSequence }),
    };
  }

  async embed(request: EmbedRequest, ctx: { signal: AbortSignal }): Promise<EmbedResponse> {
    const model = this.#loaded();
    const embedContext = Math.min(this.#contextSize, 2048);
    this.#embedding ??= model.createEmbeddingContext({ contextSize: embedContext, threads: this.#threads });
    const embedding = await this.#embedding;
    const inputs = typeof request.input === "string" ? [request.input] : request.input;
    const vectors: number[][] = [];
    let tokens = 0;
    for (const input of inputs) {
      if (ctx.signal.aborted)
        throw new RbeeError("embedding cancelled: the client went away", { statusCode: 499, code: "cancelled" });
      await checkPromptSize(model, [input], embedContext, this.#maxTokenBytes, ctx.signal);
      const count = model.tokenize(input).length;
      if (count >= embedContext) throw new PromptTooLongError(count, embedContext);
      tokens += count;
      const result = await embedding.getEmbeddingFor(input);
      vectors.push(Array.from(result.vector));
    }
    return { embeddings: vectors, prompt_tokens: tokens };
  }

  memory(): { used: number; total: number } {
    if (this.#disposed) return { used: 0, total: this.#o.device.memory_total };
    const ctxMem = this.#context?.memoryUsage ?? { ram: 0, vram: 0 };
    const used = (this.#model?.size ?? 0) + ctxMem.ram + ctxMem.vram;
    return { used, total: this.#o.device.memory_total };
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const embedding = await this.#embedding?.catch(() => undefined);
    await embedding?.dispose();
    await this.#context?.dispose();
    await this.#model?.dispose();
    await this.#llama?.dispose();
  }

  #loaded(): LlamaModel {
    if (this.#model === undefined || this.#disposed)
      throw new RbeeError("the model is not loaded", { statusCode: 503, code: "not_ready" });
    return this.#model;
  }

  /** Sampling settings of a request in node-llama-cpp's terms, llama.cpp's defaults filled in. */
  #sampling(request: InferRequest) {
    const penalize =
      (request.repeat_penalty !== undefined && request.repeat_penalty !== 1) ||
      (request.presence_penalty ?? 0) !== 0 ||
      (request.frequency_penalty ?? 0) !== 0;
    return {
      temperature: request.temperature ?? SAMPLING_DEFAULTS.temperature,
      topK: request.top_k ?? SAMPLING_DEFAULTS.top_k,
      topP: request.top_p ?? SAMPLING_DEFAULTS.top_p,
      minP: request.min_p ?? SAMPLING_DEFAULTS.min_p,
      seed: request.seed,
      repeatPenalty: penalize
        ? {
            penalty: request.repeat_penalty ?? 1,
            presencePenalty: request.presence_penalty ?? 0,
            frequencyPenalty: request.frequency_penalty ?? 0,
          }
        : (false as const),
    };
  }

  /**
   * A fill-in-the-middle prompt in llama.cpp's order (prefix, suffix, middle), from the model's own
   * FIM tokens; a model without them cannot do it.
   */
  #infillPrompt(prefix: string, suffix: string): Token[] {
    const model = this.#loaded();
    const { prefix: pre, suffix: suf, middle: mid } = model.tokens.infill;
    if (pre === null || suf === null || mid === null)
      throw new ValidationError(
        `suffix (fill-in-the-middle) needs a model with FIM tokens, and ${this.#o.modelId} has none; use a code model trained for infill (its GGUF has tokenizer.ggml.fim_pre_token_id), or send the prompt without suffix`,
        "suffix",
      );
    const tokens: Token[] = [pre, ...model.tokenize(prefix, false), suf, ...model.tokenize(suffix, false), mid];
    const bos = model.tokens.bos;
    if (model.tokens.shouldPrependBosToken && bos !== null) tokens.unshift(bos);
    return tokens;
  }

  #grammarFor(schema: Record<string, unknown>, param = "json_schema"): Promise<LlamaGrammar> {
    const key = JSON.stringify(schema);
    let grammar = this.#grammars.get(key);
    if (grammar === undefined) {
      checkJsonSchema(schema, param);
      const llama = this.#llama as Llama;
      grammar = Promise.resolve()
        .then(() => llama.createGrammarForJsonSchema(schema as never))
        .catch((err: unknown) => {
          this.#grammars.delete(key);
          throw new ValidationError(
            `${param} cannot be used: ${err instanceof Error ? err.message : String(err)}; use a schema of objects, arrays, strings, numbers, booleans, enums and const`,
            param,
          );
        });
      if (this.#grammars.size >= 64) this.#grammars.delete(this.#grammars.keys().next().value as string);
      this.#grammars.set(key, grammar);
    }
    return grammar;
  }
}
