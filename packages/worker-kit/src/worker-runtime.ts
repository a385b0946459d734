import {
  type Device,
  EmbedRequest,
  type HeartbeatCommand,
  type ImageProgressEvent,
  ImageRequest,
  type ImageResponse,
  InferRequest,
  type InferResponse,
  ModelNotFoundError,
  NotReadyError,
  PROTOCOL_VERSION,
  RbeeError,
  ShuttingDownError,
  type TokenLogprob,
  type ToolCallEvent,
  type WorkerHeartbeat,
  type WorkerInfo,
  WorkerStatus,
} from "@rbee/contract";
import {
  bearerAuth,
  type HttpContext,
  HttpServer,
  type Logger,
  linkSignals,
  Router,
  type ServerTls,
} from "@rbee/server-kit";
import type { z } from "zod";
import { Admission } from "./admission.js";
import type { LoadedModel, WorkerEngine } from "./engine.js";
import { HeartbeatTask } from "./heartbeat.js";
import { WorkerStatusMachine } from "./status.js";
import { TokenBatcher } from "./token-batcher.js";
import { WorkerMetrics } from "./worker-metrics.js";

/** Prompts and chat histories can be long: the infer body may be larger than the default limit. */
const INFER_BODY_LIMIT = 16 * 1024 * 1024;
/** Text generated within this long after an event is sent travels in the next event (TokenBatcher). */
const STREAM_BATCH_MS = 10;
/**
 * A request not answered (nor its stream opened) within this long gets `102 Processing`: the queen
 * hears that the worker is alive and has it, and stops its first-byte timeout. A quicker answer is
 * its own first byte, and saves the queen a read and a wake-up per request.
 */
const PROCESSING_AFTER_MS = 50;
/** Ready and Busy reach the heartbeat's receiver within this long (not a beat for each flip). */
const BUSY_HEARTBEAT_MS = 1000;

/**
 * Sends `102 Processing` if the response has not started within PROCESSING_AFTER_MS; returns the
 * cancel. The timer also clears itself when the response closes (answered, or its client gone),
 * however it ended, so that none outlives its request.
 */
function processingSoon(ctx: HttpContext): () => void {
  const res = ctx.res;
  const timer = setTimeout(() => {
    if (!res.headersSent && !res.writableEnded && !res.destroyed) res.writeProcessing();
  }, PROCESSING_AFTER_MS);
  const cancel = () => clearTimeout(timer);
  res.once("close", cancel);
  return cancel;
}

export interface WorkerRuntimeOptions {
  workerId: string;
  /** The model id until the engine reports its own at load. */
  modelId: string;
  host: string;
  port: number;
  device: Device;
  maxQueue: number;
  heartbeatUrl?: string;
  heartbeatIntervalMs: number;
  /** A worker whose heartbeat target stays unreachable this long shuts down. 0 disables. */
  orphanTimeoutMs: number;
  /** Required on every route but /health when set; sent with heartbeats. */
  clusterToken?: string;
  /** Serve HTTPS with this certificate (a hive gives its workers its own). */
  tls?: ServerTls;
  /** How long in-flight requests may run on after a stop before they are cancelled. */
  shutdownGraceMs: number;
  log: Logger;
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/**
 * Everything around an engine that makes it a worker: the HTTP contract (`/health`, `/info`,
 * `/v1/infer`, `/v1/embed`, `/v1/images`, `/metrics`, `/v1/shutdown`), status, admission, heartbeats and shutdown.
 */
export class WorkerRuntime {
  readonly engine: WorkerEngine;
  readonly status = new WorkerStatusMachine();
  readonly metrics = new WorkerMetrics();
  /** Resolves once the worker has stopped (after `shutdown`). */
  readonly done: Promise<void>;

  #o: WorkerRuntimeOptions;
  #log: Logger;
  #http: HttpServer;
  #admission: Admission | undefined;
  #heartbeat: HeartbeatTask | undefined;
  #modelId: string;
  #contextSize: number | undefined;
  #port = 0;
  #startedAt = Date.now();
  #loadAbort = new AbortController();
  #loading: Promise<LoadedModel> | undefined;
  #forceAbort = new AbortController();
  #shutdown: Promise<void> | undefined;
  #resolveDone!: () => void;
  #requestsTotal = 0;
  #requestsFailed = 0;
  #tokensGenerated = 0;
  /** Counted as tokens are emitted (not when requests finish), for live throughput. */
  #liveTokens = 0;
  #throughput = 0;
  #rateSamples: number[] = [];
  #rateTimer: NodeJS.Timeout | undefined;
  #lastRequestAt: string | null = null;
  #failure: Error | undefined;

  constructor(engine: WorkerEngine, options: WorkerRuntimeOptions) {
    if (!isLoopback(options.host) && !options.clusterToken) {
      throw new Error(
        `refusing to listen on ${options.host} without a cluster token: anyone on the network could use this worker; set RBEE_CLUSTER_TOKEN or bind 127.0.0.1`,
      );
    }
    this.engine = engine;
    this.#o = options;
    this.#log = options.log;
    this.#modelId = options.modelId;
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    this.#http = new HttpServer({
      router: this.#routes(),
      log: this.#log,
      metrics: this.metrics,
      quietRoutes: ["/health", "/metrics"],
      tls: options.tls,
    });
    for (const s of WorkerStatus.options) this.metrics.status.set({ status: s }, s === "Starting" ? 1 : 0);
    this.status.onChange((to, from) => {
      this.metrics.status.set({ status: from }, 0);
      this.metrics.status.set({ status: to }, 1);
      if ((from === "Ready" && to === "Busy") || (from === "Busy" && to === "Ready")) {
        // these flip with every request under load: the queen counts its own requests in flight,
        // and learns the flip within a second (a beat for each would cost more than the request)
        this.#heartbeat?.beatSoon(BUSY_HEARTBEAT_MS);
        return;
      }
      this.#log.info({ from, to }, "status");
      this.#heartbeat?.beatNow();
    });
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    const host = this.#o.host.includes(":") ? `[${this.#o.host}]` : this.#o.host;
    return `${this.#o.tls ? "https" : "http"}://${host}:${this.#port}`;
  }

  get modelId(): string {
    return this.#modelId;
  }

  /** Why the engine failed, when it told the runtime so (LoadContext.fail); the process then exits non-zero. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /**
   * Listens (so that /health answers 503 while loading), loads the engine, and turns Ready.
   * Throws if the port is taken or the engine fails to load; the server is closed again then.
   */
  async start(): Promise<void> {
    const bound = await this.#http.listen(this.#o.port, this.#o.host);
    this.#port = bound.port;
    this.#log.info({ url: this.url, port: this.#port, device: this.#o.device.id }, "listening");
    if (this.#o.heartbeatUrl) {
      this.#heartbeat = new HeartbeatTask({
        url: this.#o.heartbeatUrl,
        intervalMs: this.#o.heartbeatIntervalMs,
        orphanTimeoutMs: this.#o.orphanTimeoutMs,
        token: this.#o.clusterToken,
        payload: () => this.heartbeat(),
        onCommand: (cmd) => this.#onCommand(cmd),
        onOrphaned: (ms) => {
          this.#log.warn({ since_last_ack_ms: ms }, "heartbeat target unreachable; shutting down");
          void this.shutdown(`heartbeat target unreachable for ${Math.round(ms / 1000)} s`);
        },
        log: this.#log,
      });
      this.#heartbeat.start();
    }
    this.#rateTimer = setInterval(() => this.#sampleRate(), 1000);
    this.#rateTimer.unref();
    const t0 = performance.now();
    this.#loading = this.engine.load({
      signal: this.#loadAbort.signal,
      log: this.#log,
      fail: (error) => this.#fail(error),
    });
    try {
      const loaded = await this.#loading;
      this.#modelId = loaded.modelId;
      this.#contextSize = loaded.contextSize;
      this.#admission = new Admission(loaded.slots, this.#o.maxQueue);
    } catch (err) {
      if (this.status.stopping) return;
      this.status.transition("Failed");
      await this.#heartbeat?.stopWithFinal();
      await this.#stopServing();
      throw err;
    }
    if (this.status.stopping) return;
    this.status.transition("Ready");
    this.#log.info(
      {
        url: this.url,
        model: this.#modelId,
        load_ms: Math.round(performance.now() - t0),
        slots: this.#admission.slots,
      },
      "worker ready",
    );
  }

  /**
   * Stops accepting (503), refuses queued requests, lets in-flight ones finish within the grace
   * period and cancels the rest, frees the engine, then closes the server. Idempotent.
   */
  shutdown(reason: string): Promise<void> {
    this.#shutdown ??= this.#doShutdown(reason);
    return this.#shutdown;
  }

  info(): WorkerInfo {
    return {
      id: this.#o.workerId,
      model_id: this.#modelId,
      device: this.#o.device.id,
      port: this.#port,
      status: this.status.status,
      implementation: this.engine.implementation,
      version: this.engine.version,
      worker_type: this.engine.workerType,
      capabilities: [...this.engine.capabilities],
      protocol_version: PROTOCOL_VERSION,
      slots: this.#admission?.slots ?? 1,
      max_queue: this.#o.maxQueue,
      context_size: this.#contextSize,
      pid: process.pid,
    };
  }

  heartbeat(): WorkerHeartbeat {
    const mem = this.engine.memory?.() ?? { used: 0, total: this.#o.device.memory_total };
    const standard: WorkerHeartbeat = {
      protocol_version: PROTOCOL_VERSION,
      worker_id: this.#o.workerId,
      status: this.status.status,
      model: this.#modelId,
      device: this.#o.device.id,
      vram_used: Math.round(mem.used),
      vram_total: Math.round(mem.total),
      requests_total: this.#requestsTotal,
      tokens_generated: this.#tokensGenerated,
      uptime_seconds: Math.round((Date.now() - this.#startedAt) / 100) / 10,
      last_request_at: this.#lastRequestAt,
      url: this.url,
      port: this.#port,
      pid: process.pid,
      worker_type: this.engine.workerType,
      implementation: this.engine.implementation,
      capabilities: [...this.engine.capabilities],
      memory_used: process.memoryUsage.rss(),
      slots: this.#admission?.slots ?? 1,
      in_flight: this.#admission?.inFlight ?? 0,
      requests_failed: this.#requestsFailed,
      batch_size: this.#admission?.inFlight ?? 0,
      queue_depth: this.#admission?.queued ?? 0,
      throughput_tokens_per_second: Math.round(this.#throughput * 10) / 10,
    };
    return this.engine.heartbeatExtras ? { ...standard, ...this.engine.heartbeatExtras(standard) } : standard;
  }

  #routes(): Router {
    const auth = this.#o.clusterToken
      ? [
          bearerAuth({
            tokens: () => [this.#o.clusterToken as string],
            what: "cluster token",
            hint: "workers take the cluster token of their hive (RBEE_CLUSTER_TOKEN)",
          }),
        ]
      : [];
    return new Router()
      .get("/health", async (ctx) => {
        // ?wait_ms=N (at most 5 s): a starting worker answers when it is ready (or fails), not at once
        await this.status.settled(healthWaitMs(ctx.url.searchParams.get("wait_ms")), ctx.signal);
        ctx.send(this.status.serving ? 200 : 503, { status: this.status.status });
      })
      .get("/info", (ctx) => ctx.send(200, this.info()), auth)
      .get(
        "/metrics",
        async (ctx) => {
          const { contentType, body } = await this.metrics.render();
          ctx.sendText(200, body, contentType);
        },
        auth,
      )
      .post("/v1/infer", (ctx) => this.#infer(ctx), auth)
      .post("/v1/embed", (ctx) => this.#embed(ctx), auth)
      .post("/v1/images", (ctx) => this.#images(ctx), auth)
      .post(
        "/v1/shutdown",
        (ctx) => {
          ctx.send(202, { status: "Stopping" });
          void this.shutdown("shutdown requested over HTTP");
        },
        auth,
      );
  }

  #assertServing(): Admission {
    if (this.status.stopping) throw new ShuttingDownError();
    if (!this.status.serving || this.#admission === undefined) throw new NotReadyError(this.status.status);
    return this.#admission;
  }

  #checkModel(model: string | undefined): void {
    if (model !== undefined && model !== this.#modelId) {
      throw new ModelNotFoundError(model, `this worker serves '${this.#modelId}'`);
    }
  }

  async #infer(ctx: HttpContext): Promise<void> {
    this.#assertServing();
    const request = await ctx.json(InferRequest, "infer request", INFER_BODY_LIMIT);
    this.#checkModel(request.model);
    const admission = this.#assertServing();
    // the first byte of the answer soon: the queen knows this worker is alive and has the
    // request, and stops its first-byte timeout (the final status follows when there is one)
    const processed = processingSoon(ctx);
    const accepted = performance.now();
    let release: () => void;
    this.metrics.queueDepth.set(admission.queued + 1);
    try {
      release = await admission.acquire(ctx.signal);
    } catch (err) {
      processed();
      this.metrics.requests.inc({ outcome: "rejected" });
      throw err;
    } finally {
      this.metrics.queueDepth.set(admission.queued);
    }
    this.#onAdmitted(admission);
    // aborts when the client leaves or the grace period of a shutdown ends; unlinked when done, so
    // that the long-lived force signal keeps nothing of finished requests (AbortSignal.any would)
    const link = linkSignals(ctx.signal, this.#forceAbort.signal);
    const signal = link.signal;
    let index = 0;
    let firstTokenAt: number | undefined;
    const wantLogprobs = request.logprobs !== undefined;
    const batcher = request.stream
      ? new TokenBatcher<TokenLogprob>(
          (text, logprobs) =>
            ctx.sse().send("token", wantLogprobs ? { text, index: index++, logprobs } : { text, index: index++ }),
          STREAM_BATCH_MS,
        )
      : undefined;
    const count = (tokens: number) => {
      if (tokens > 0) {
        this.#liveTokens += tokens;
        firstTokenAt ??= performance.now();
      }
    };
    const emit = (text: string, tokens: number, logprobs?: readonly TokenLogprob[]): Promise<unknown> | undefined => {
      count(tokens);
      if (batcher === undefined || (text === "" && !logprobs?.length)) return undefined;
      return batcher.push(text, logprobs);
    };
    const emitToolCall = (piece: ToolCallEvent, tokens: number): Promise<unknown> | undefined => {
      count(tokens);
      if (batcher === undefined) return undefined;
      // text generated before the call goes out first
      return batcher.sendAfter(() => ctx.sse().send("tool_call", piece));
    };
    try {
      const result = await this.engine.infer(request, { signal, log: this.#log, emit, emitToolCall });
      const done = performance.now();
      const response: InferResponse = {
        text: result.text,
        tokens_generated: result.tokensGenerated,
        prompt_tokens: result.promptTokens,
        cached_tokens: result.cachedTokens,
        duration_ms: Math.round((done - accepted) * 100) / 100,
        time_to_first_token_ms:
          firstTokenAt === undefined ? undefined : Math.round((firstTokenAt - accepted) * 100) / 100,
        finish_reason: result.finishReason,
        stop_sequence: result.stopSequence,
        model: this.#modelId,
        ...(result.toolCalls?.length ? { tool_calls: result.toolCalls } : {}),
        ...(result.logprobs ? { logprobs: result.logprobs } : {}),
      };
      this.#tokensGenerated += result.tokensGenerated;
      this.metrics.tokensGenerated.inc(result.tokensGenerated);
      this.metrics.promptTokens.inc(result.promptTokens);
      this.metrics.requests.inc({ outcome: result.finishReason });
      this.metrics.requestDuration.observe((done - accepted) / 1000);
      if (firstTokenAt !== undefined) this.metrics.timeToFirstToken.observe((firstTokenAt - accepted) / 1000);
      Object.assign(ctx.logFields, {
        prompt_tokens: result.promptTokens,
        tokens: result.tokensGenerated,
        finish_reason: result.finishReason,
      });
      if (batcher) {
        await batcher.flush();
        await ctx.sse().send("done", response);
      } else ctx.send(200, response);
    } catch (err) {
      this.#requestsFailed++;
      this.metrics.requests.inc({ outcome: "error" });
      await batcher?.flush().catch(() => undefined); // text already generated goes out before the error
      throw err;
    } finally {
      link.unlink();
      processed();
      release();
      this.#onReleased(admission);
    }
  }

  async #embed(ctx: HttpContext): Promise<void> {
    const embed = this.engine.embed;
    if (!embed) {
      throw new RbeeError(`this worker (${this.engine.implementation}) cannot embed; use a worker with embeddings`, {
        statusCode: 400,
        code: "embeddings_unsupported",
      });
    }
    await this.#admitted(ctx, EmbedRequest, "embed request", async (request, signal) => {
      const result = await embed.call(this.engine, { ...request }, { signal, log: this.#log });
      this.metrics.promptTokens.inc(result.prompt_tokens);
      this.metrics.requests.inc({ outcome: "embed" });
      ctx.send(200, { ...result, model: this.#modelId });
    });
  }

  async #images(ctx: HttpContext): Promise<void> {
    const generate = this.engine.generateImages;
    if (!generate) {
      throw new RbeeError(
        `this worker (${this.engine.implementation}, model '${this.#modelId}') generates text, not images; use a worker with image-generation (rbee worker types)`,
        { statusCode: 400, code: "image_generation_unsupported", param: "model" },
      );
    }
    const accepted = performance.now();
    await this.#admitted(ctx, ImageRequest, "image request", async (request, signal) => {
      const progress = request.stream ? (p: ImageProgressEvent) => void ctx.sse().send("progress", p) : () => {};
      const result = await generate.call(this.engine, request, { signal, log: this.#log, progress });
      const response: ImageResponse = {
        images: result.images,
        duration_ms: Math.round((performance.now() - accepted) * 100) / 100,
        model: this.#modelId,
        ...(result.engine_job_id !== undefined ? { engine_job_id: result.engine_job_id } : {}),
      };
      this.metrics.requests.inc({ outcome: "images" });
      this.metrics.requestDuration.observe((performance.now() - accepted) / 1000);
      ctx.logFields.images = result.images.length;
      if (request.stream) await ctx.sse().send("done", response);
      else ctx.send(200, response);
    });
  }

  /**
   * One request that is not a text generation (embeddings, images): parsed, checked against the
   * model, admitted to a slot (the queen hears `102 Processing` if it takes a while), run with a signal that
   * aborts when the client leaves or the grace period ends, and released.
   */
  async #admitted<S extends z.ZodType<{ model?: string | undefined }>>(
    ctx: HttpContext,
    schema: S,
    what: string,
    run: (request: z.output<S>, signal: AbortSignal) => Promise<void>,
  ): Promise<void> {
    this.#assertServing();
    const request = await ctx.json(schema, what, INFER_BODY_LIMIT);
    this.#checkModel(request.model);
    const admission = this.#assertServing();
    const processed = processingSoon(ctx);
    let release: () => void;
    try {
      release = await admission.acquire(ctx.signal);
    } catch (err) {
      processed();
      throw err;
    }
    this.#onAdmitted(admission);
    const link = linkSignals(ctx.signal, this.#forceAbort.signal);
    try {
      await run(request, link.signal);
    } catch (err) {
      this.#requestsFailed++;
      this.metrics.requests.inc({ outcome: "error" });
      throw err;
    } finally {
      link.unlink();
      processed();
      release();
      this.#onReleased(admission);
    }
  }

  #onAdmitted(admission: Admission): void {
    this.#lastRequestAt = new Date().toISOString();
    this.metrics.inFlight.set(admission.inFlight);
    if (this.status.status === "Ready") this.status.transition("Busy");
  }

  #onReleased(admission: Admission): void {
    this.#requestsTotal++;
    this.metrics.inFlight.set(admission.inFlight);
    if (admission.inFlight === 0 && this.status.status === "Busy") this.status.transition("Ready");
  }

  #sampleRate(): void {
    this.#rateSamples.push(this.#liveTokens);
    if (this.#rateSamples.length > 6) this.#rateSamples.shift();
    const first = this.#rateSamples[0] ?? 0;
    const span = this.#rateSamples.length - 1;
    this.#throughput = span > 0 ? (this.#liveTokens - first) / span : 0;
    this.metrics.throughput.set(this.#throughput);
  }

  #fail(error: Error): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    this.#log.error({ err: error }, "the engine failed; the worker stops");
    void this.shutdown(`the engine failed: ${error.message.split("\n")[0]}`);
  }

  #onCommand(cmd: HeartbeatCommand): void {
    this.#log.info({ command: cmd }, "heartbeat command");
    if (cmd.type === "shutdown") {
      void this.shutdown(cmd.reason ? `shutdown command: ${cmd.reason}` : "shutdown command");
      return;
    }
    if (cmd.type === "unload_model") {
      const unload = this.engine.unloadModel;
      if (unload === undefined || cmd.model === this.#modelId) {
        void this.shutdown(`unload_model ${cmd.model}: this worker serves only that model`);
        return;
      }
      void unload.call(this.engine, cmd.model).then(
        (ok) => {
          if (!ok) void this.shutdown(`unload_model ${cmd.model}: the engine cannot unload it`);
        },
        (err: unknown) => this.#log.error({ err }, "unload_model failed"),
      );
    }
  }

  async #doShutdown(reason: string): Promise<void> {
    this.#log.info({ reason, in_flight: this.#admission?.inFlight ?? 0 }, "shutting down");
    if (this.status.status !== "Stopping") this.status.transition("Stopping");
    this.#loadAbort.abort(new Error(reason));
    const admission = this.#admission;
    if (admission) {
      admission.rejectQueued(new ShuttingDownError());
      const grace = setTimeout(() => {
        this.#log.warn({ in_flight: admission.inFlight }, "grace period over; cancelling in-flight requests");
        this.#forceAbort.abort(new Error("the worker is shutting down"));
      }, this.#o.shutdownGraceMs);
      await admission.idle();
      clearTimeout(grace);
    }
    await this.#loading?.catch(() => undefined);
    try {
      await this.engine.dispose();
    } catch (err) {
      this.#log.error({ err }, "engine dispose failed");
    }
    await this.#stopServing();
    this.status.transition(this.#failure ? "Failed" : "Stopped");
    await this.#heartbeat?.stopWithFinal();
    this.#log.info({ reason }, "stopped");
    this.#resolveDone();
  }

  async #stopServing(): Promise<void> {
    if (this.#rateTimer) clearInterval(this.#rateTimer);
    const closed = this.#http.close();
    const timeout = new Promise((r) => setTimeout(r, 2000).unref());
    await Promise.race([closed, timeout]);
    this.#http.destroyConnections();
  }
}

/** The longest a starting worker holds GET /health?wait_ms=... before it answers 503. */
export const MAX_HEALTH_WAIT_MS = 5000;

/** `wait_ms` of GET /health: a whole number of milliseconds, clamped to 0..MAX_HEALTH_WAIT_MS (else 0). */
function healthWaitMs(given: string | null): number {
  const ms = given === null ? 0 : Number(given);
  return Number.isFinite(ms) && ms > 0 ? Math.min(Math.floor(ms), MAX_HEALTH_WAIT_MS) : 0;
}
