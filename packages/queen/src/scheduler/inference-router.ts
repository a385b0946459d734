import type { IncomingMessage } from "node:http";
import {
  type EmbedRequest,
  EmbedResponse,
  ErrorEvent,
  ImageProgressEvent,
  type ImageRequest,
  ImageResponse,
  type InferRequest,
  type InferResponse,
  parseJson,
  RbeeError,
  readInferResponse,
  SseParser,
  safeParse,
  type TokenLogprob,
  ToolCallEvent,
  type WorkerCapability,
  WorkerUnavailableError,
} from "@rbee/contract";
import {
  HttpStatusError,
  type Logger,
  linkSignals,
  requestJson,
  requestJsonWith,
  sendRequest,
  toStatusError,
  UnreachableError,
} from "@rbee/server-kit";
import type { WorkerEntry } from "../registry/cluster-registry.js";
import { ConversationAffinity } from "./affinity.js";
import type { ModelProgress } from "./hive-client.js";
import type { Lease, Narrate, Scheduler } from "./scheduler.js";

export interface InferOptions {
  signal: AbortSignal;
  /** Sets the worker's keep-alive from now on (Ollama's per-request keep_alive). */
  keepAliveMs?: number;
  narrate?: Narrate;
  /** Download progress when the model must be fetched first. */
  progress?: (p: ModelProgress) => void;
  /** Receives text as it streams; without it the worker answers in one piece. */
  onToken?: (text: string, index: number, logprobs?: TokenLogprob[]) => Promise<unknown> | undefined;
  /** Receives the pieces of tool calls as they stream. */
  onToolCall?: (piece: ToolCallEvent) => Promise<unknown> | undefined;
  /** The worker type to start when no worker serves the model yet. */
  workerType?: string;
  /** The request comes from the cluster's administrator (its RequestFacts): a model named by path may be anywhere. */
  admin?: boolean;
}

export interface InferOutcome {
  response: InferResponse;
  workerId: string;
  model: string;
}

/** Failures where the request never reached a worker that could take it: try another. */
function isRetryable(err: unknown): boolean {
  if (err instanceof UnreachableError) return true;
  // a worker whose engine ran out of memory on this very request would run out on the next one too
  if (err instanceof HttpStatusError)
    return (err.status === 503 && err.code !== "insufficient_memory") || err.status === 429;
  return false;
}

/**
 * Sends an inference request to a worker the scheduler picks, streaming or not. A worker that cannot
 * be reached, is shutting down or is full before the first token is replaced by another (or a new
 * one); one that dies mid-stream fails the request at once with a clear error.
 */
export class InferenceRouter {
  readonly affinity = new ConversationAffinity();

  constructor(
    private readonly scheduler: Scheduler,
    private readonly token: string,
    private readonly log: Logger,
    /** A worker that sends no byte of its answer within this long is given up for another. */
    private readonly firstByteTimeoutMs: number,
    /** A worker could not be reached; the next attempt waits for this (it finds out whether its hive is gone). */
    private readonly onWorkerFailed: (worker: WorkerEntry, err: unknown) => void | Promise<void>,
  ) {}

  async infer(
    modelRef: string,
    request: Omit<InferRequest, "model" | "stream">,
    o: InferOptions,
  ): Promise<InferOutcome> {
    const messages = request.messages;
    const prefer = messages && this.affinity.lookup(modelRef, messages);
    // a constrained output needs a worker with a grammar engine, tool calls one that can make them
    const capability: WorkerCapability =
      request.tools !== undefined && request.tools.length > 0 && request.tool_choice !== "none"
        ? "tools"
        : request.json_schema !== undefined
          ? "json_schema"
          : "text-generation";
    return this.#withWorker(modelRef, { ...o, prefer, capability }, async (lease, started, signal) => {
      const body = { ...request, model: lease.model, stream: o.onToken !== undefined };
      const url = `${lease.worker.report.url}/v1/infer`;
      const what = `worker ${lease.worker.id}`;
      const response = o.onToken
        ? await this.#stream(url, body, what, { ...o, signal }, started)
        : await requestJsonWith(url, readInferResponse, {
            body,
            token: this.token,
            signal,
            what,
            timeoutMs: this.firstByteTimeoutMs,
          });
      if (messages) this.affinity.record(modelRef, messages, response.text, lease.worker.id);
      return { response, workerId: lease.worker.id, model: lease.model };
    });
  }

  async embed(
    modelRef: string,
    request: Omit<EmbedRequest, "model">,
    o: { signal: AbortSignal; keepAliveMs?: number; admin?: boolean },
  ): Promise<EmbedResponse & { model: string }> {
    return this.#withWorker(modelRef, { ...o, capability: "embeddings" }, async (lease, _started, signal) => {
      const url = `${lease.worker.report.url}/v1/embed`;
      const body = { ...request, model: lease.model };
      const res = await requestJson(url, EmbedResponse, {
        body,
        token: this.token,
        signal,
        what: `worker ${lease.worker.id}`,
        timeoutMs: this.firstByteTimeoutMs,
      });
      return { ...res, model: lease.model };
    });
  }

  /**
   * Image generation on a worker with `image-generation`. With `onProgress` the worker streams its
   * progress (SSE `progress` events) and the final images arrive in its `done` event.
   */
  async images(
    modelRef: string,
    request: Omit<ImageRequest, "model" | "stream">,
    o: {
      signal: AbortSignal;
      keepAliveMs?: number;
      narrate?: Narrate;
      workerType?: string;
      admin?: boolean;
      onProgress?: (p: ImageProgressEvent, workerId: string) => void;
    },
  ): Promise<ImageResponse & { model: string; workerId: string }> {
    return this.#withWorker(modelRef, { ...o, capability: "image-generation" }, async (lease, started, signal) => {
      const url = `${lease.worker.report.url}/v1/images`;
      const what = `worker ${lease.worker.id}`;
      const body = { ...request, model: lease.model, stream: o.onProgress !== undefined };
      const onProgress = o.onProgress;
      const res = onProgress
        ? await this.#streamImages(url, body, what, signal, started, (p) => onProgress(p, lease.worker.id))
        : await requestJson(url, ImageResponse, {
            body,
            token: this.token,
            signal,
            what,
            timeoutMs: this.firstByteTimeoutMs,
          });
      return { ...res, model: lease.model, workerId: lease.worker.id };
    });
  }

  async #withWorker<T>(
    modelRef: string,
    o: {
      signal: AbortSignal;
      keepAliveMs?: number;
      narrate?: Narrate;
      progress?: (p: ModelProgress) => void;
      prefer?: string;
      capability: WorkerCapability;
      workerType?: string;
      admin?: boolean;
    },
    call: (lease: Lease, started: { value: boolean }, signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const exclude = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      const lease = await this.scheduler.acquire(modelRef, {
        signal: o.signal,
        narrate: o.narrate,
        progress: o.progress,
        exclude,
        prefer: o.prefer,
        capability: o.capability,
        workerType: o.workerType,
        keepAliveMs: o.keepAliveMs,
        admin: o.admin,
      });
      const started = { value: false };
      const link = linkSignals(o.signal, lease.signal);
      try {
        return await call(lease, started, link.signal);
      } catch (err) {
        if (o.signal.aborted) throw err;
        // the worker's hive was lost while it answered: the scheduler's reason says so
        if (lease.signal.aborted) throw lease.signal.reason;
        if (!started.value && isRetryable(err) && attempt < 3) {
          this.log.warn(
            { worker_id: lease.worker.id, err: (err as Error).message, attempt },
            "worker unusable; trying another",
          );
          exclude.add(lease.worker.id);
          lease.release(o.keepAliveMs);
          if (err instanceof UnreachableError) await this.onWorkerFailed(lease.worker, err);
          continue;
        }
        if (err instanceof UnreachableError) {
          void this.onWorkerFailed(lease.worker, err);
          throw new WorkerUnavailableError(
            started.value
              ? `worker ${lease.worker.id} stopped in the middle of the answer (${err.message}); its hive restarts it, retry the request`
              : `worker ${lease.worker.id} cannot be reached (${err.message}); retry the request`,
            { worker_id: lease.worker.id },
          );
        }
        throw err;
      } finally {
        link.unlink();
        lease.release(o.keepAliveMs);
      }
    }
  }

  /** POSTs to a worker asking for Server-Sent Events; an error status throws it as an HttpStatusError. */
  async #openStream(url: string, body: unknown, what: string, signal: AbortSignal): Promise<IncomingMessage> {
    const res = await sendRequest(url, {
      body,
      token: this.token,
      signal,
      what,
      headers: { accept: "text/event-stream" },
      timeoutMs: this.firstByteTimeoutMs,
    });
    if ((res.statusCode ?? 500) >= 400) throw await toStatusError(res, url, what);
    return res;
  }

  /**
   * Reads a worker's event stream to its end. `handle` gets each event but `error` with its JSON
   * data, and answers: undefined (go on), a Promise (the worker's socket is paused until it settles:
   * backpressure end to end), a string (the event was malformed: 502 naming it), or `{done}` (the
   * stream's result). The worker's `error` event, and a stream that ends or breaks first, fail it.
   * Events are handled synchronously as bytes arrive: this is the hot path of every streamed token.
   */
  #readStream<T>(
    res: IncomingMessage,
    url: string,
    what: string,
    signal: AbortSignal,
    handle: (event: string, data: unknown) => Promise<unknown> | string | { done: T } | undefined,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        res.destroy();
        reject(signal.aborted ? signal.reason : err);
      };
      const bad = (message: string) =>
        fail(new RbeeError(`${what} ${message}`, { statusCode: 502, code: "bad_gateway" }));
      const parser = new SseParser((e) => {
        if (settled) return;
        const parsed = parseJson(e.data);
        if (!parsed.ok) return bad("sent an event that is not JSON");
        if (e.event === "error") {
          const err = safeParse(ErrorEvent, parsed.value, `error event from ${what}`);
          return fail(
            new RbeeError(`${what} failed: ${err.ok ? err.value.message : e.data}`, {
              statusCode: err.ok && err.value.code === "insufficient_memory" ? 503 : 502,
              code: err.ok ? err.value.code : "worker_error",
            }),
          );
        }
        const outcome = handle(e.event ?? "message", parsed.value);
        if (typeof outcome === "string") return bad(outcome);
        if (outcome instanceof Promise) {
          res.pause();
          outcome.then(() => res.resume(), fail);
        } else if (outcome !== undefined) {
          settled = true;
          resolve(outcome.done);
        }
        return undefined;
      });
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => parser.push(chunk));
      res.on("end", () => {
        parser.end();
        fail(new UnreachableError(url, "the stream ended without a done event", what));
      });
      res.on("error", (err) => fail(new UnreachableError(url, `the stream broke: ${err.message}`, what)));
      res.on("close", () => fail(new UnreachableError(url, "the connection closed in the middle of the stream", what)));
    });
  }

  async #stream(
    url: string,
    body: unknown,
    what: string,
    o: InferOptions,
    started: { value: boolean },
  ): Promise<InferResponse> {
    const onToken = o.onToken as NonNullable<InferOptions["onToken"]>;
    const res = await this.#openStream(url, body, what, o.signal);
    return this.#readStream<InferResponse>(res, url, what, o.signal, (event, data) => {
      if (event === "token") {
        const t = data as { text?: unknown; index?: unknown; logprobs?: TokenLogprob[] };
        if (typeof t.text !== "string" || typeof t.index !== "number")
          return "sent a token event without text and index";
        started.value = true;
        return onToken(t.text, t.index, t.logprobs) ?? undefined;
      }
      if (event === "tool_call") {
        const piece = safeParse(ToolCallEvent, data, `tool_call event from ${what}`);
        if (!piece.ok) return `sent a malformed tool_call event: ${piece.error.message}`;
        started.value = true;
        return o.onToolCall?.(piece.value) ?? undefined;
      }
      if (event === "done") {
        const done = readInferResponse(data, `done event from ${what}`);
        return done.ok ? { done: done.value } : `sent a malformed done event: ${done.error.message}`;
      }
      return undefined;
    });
  }

  async #streamImages(
    url: string,
    body: unknown,
    what: string,
    signal: AbortSignal,
    started: { value: boolean },
    onProgress: (p: ImageProgressEvent) => void,
  ): Promise<ImageResponse> {
    const res = await this.#openStream(url, body, what, signal);
    return this.#readStream<ImageResponse>(res, url, what, signal, (event, data) => {
      if (event === "progress") {
        const p = safeParse(ImageProgressEvent, data, `progress event from ${what}`);
        if (!p.ok) return `sent a malformed progress event: ${p.error.message}`;
        started.value = true;
        onProgress(p.value);
      } else if (event === "done") {
        const done = safeParse(ImageResponse, data, `done event from ${what}`);
        return done.ok ? { done: done.value } : `sent a malformed done event: ${done.error.message}`;
      }
      return undefined;
    });
  }
}
