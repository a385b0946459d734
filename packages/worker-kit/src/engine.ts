import type {
  EmbedRequest,
  EmbedResponse,
  FinishReason,
  ImageProgressEvent,
  ImageRequest,
  ImageResponse,
  InferRequest,
  TokenLogprob,
  ToolCall,
  ToolCallEvent,
  WorkerCapability,
  WorkerHeartbeat,
} from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";

export interface LoadContext {
  /** Aborted when the worker is told to stop while loading. */
  signal: AbortSignal;
  log: Logger;
  /**
   * Tells the worker that the engine cannot serve any more (an adapter's engine process died): the
   * worker logs the error, stops, and its process exits non-zero, so that its hive restarts it.
   * May be called at any time after load() started; later calls are ignored.
   */
  fail(error: Error): void;
}

/** What an engine reports once its model is loaded. */
export interface LoadedModel {
  /** The id the worker serves the model under (what clients put in `model`). */
  modelId: string;
  /** How many requests the engine runs at the same time. */
  slots: number;
  /** Tokens of context each request can use. */
  contextSize?: number;
}

export interface InferContext {
  /** Aborted when the client goes away or the shutdown grace period ends: stop and return `cancelled`. */
  signal: AbortSignal;
  log: Logger;
  /**
   * Delivers generated text as it is produced. `tokens` is how many generated tokens the text
   * stands for (it may be 0 for text held back, or more than 1 after a held-back stop prefix).
   * Await the result: it applies the client's backpressure.
   */
  emit(text: string, tokens: number, logprobs?: readonly TokenLogprob[]): Promise<unknown> | undefined;
  /**
   * Delivers a piece of a tool call as it is generated (streamed as a `tool_call` event, after the
   * text emitted before it). Await the result, as for `emit`.
   */
  emitToolCall(piece: ToolCallEvent, tokens: number): Promise<unknown> | undefined;
}

/** What an engine returns for one request; the kit adds timing and the model name. */
export interface InferResult {
  text: string;
  tokensGenerated: number;
  promptTokens: number;
  cachedTokens?: number;
  finishReason: FinishReason;
  /** The calls, when the model called tools (finishReason `tool_calls`). */
  toolCalls?: ToolCall[];
  /** One entry per generated token, when the request asked for logprobs. */
  logprobs?: TokenLogprob[];
  /** The request's stop string that ended generation, when one did (engines that cannot tell leave it out). */
  stopSequence?: string;
}

export interface ImageContext {
  /** Aborted when the client goes away or the shutdown grace period ends: stop the engine's work and throw. */
  signal: AbortSignal;
  log: Logger;
  /** Reports where the generation is (streamed as a `progress` event when the client asked for a stream). */
  progress(p: ImageProgressEvent): void;
}

/** What an image engine returns: the images, and its own id of the work; the kit adds timing and the model. */
export type ImageResult = Pick<ImageResponse, "images" | "engine_job_id">;

/**
 * A worker is one object with `load()` and `infer()`; the kit gives it the HTTP contract, status,
 * admission (slots and a bounded queue), heartbeats, metrics and graceful shutdown.
 */
export interface WorkerEngine {
  /** The type a hive spawns it as, e.g. "llm". */
  readonly workerType: string;
  /** The program behind it, e.g. "rbee-llm". */
  readonly implementation: string;
  readonly version: string;
  readonly capabilities: readonly WorkerCapability[];

  load(ctx: LoadContext): Promise<LoadedModel>;
  infer(request: InferRequest, ctx: InferContext): Promise<InferResult>;
  embed?(request: EmbedRequest, ctx: { signal: AbortSignal; log: Logger }): Promise<EmbedResponse>;
  /** `POST /v1/images`, for engines with the `image-generation` capability. */
  generateImages?(request: ImageRequest, ctx: ImageContext): Promise<ImageResult>;

  /** Bytes of device memory the worker holds, and the device's total. */
  memory?(): { used: number; total: number };
  /**
   * Heartbeat fields beyond the standard ones (several models, batching, workflows, groups), or
   * better values of standard ones. `standard` is the heartbeat the kit built (e.g. its own queue).
   * Called on every heartbeat: return what is at hand, do not wait for the engine.
   */
  heartbeatExtras?(standard: Readonly<WorkerHeartbeat>): Partial<WorkerHeartbeat>;
  /** Carries out an `unload_model` command; false means it cannot, and the worker shuts down instead. */
  unloadModel?(model: string): Promise<boolean>;
  /** Frees everything. Called once, after in-flight requests finished or were cancelled. */
  dispose(): Promise<void>;
}
