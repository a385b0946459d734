import {
  type HiveModel,
  type InferRequest,
  type InferResponse,
  ModelNotFoundError,
  type TokenLogprob,
  toRbeeError,
  WorkerInfo,
} from "@rbee/contract";
import { type HttpContext, type Logger, Router, requestJson } from "@rbee/server-kit";
import { noteIgnoredFields } from "../http/ignored-fields.js";
import type { ClusterRegistry, WorkerEntry } from "../registry/cluster-registry.js";
import type { HiveClient } from "../scheduler/hive-client.js";
import type { InferenceRouter } from "../scheduler/inference-router.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import { NdjsonWriter } from "./ndjson-writer.js";
import {
  OllamaChatRequest,
  OllamaDeleteRequest,
  OllamaEmbeddingsRequest,
  OllamaEmbedRequest,
  OllamaGenerateRequest,
  OllamaPullRequest,
  OllamaShowRequest,
} from "./ollama-schemas.js";
import { ollamaToolCalls, ollamaTools } from "./ollama-tools.js";
import {
  chatMessages,
  generateInput,
  jsonSchemaFrom,
  modelDetails,
  modelDigest,
  modelId,
  modelInfo,
  normalize,
  ollamaKeepAliveMs,
  ollamaLogprobs,
  ollamaName,
  type Sampling,
  samplingFrom,
  unsupported,
} from "./ollama-translate.js";

/** The Ollama API version rbee answers /api/version with: the API it follows (clients gate features on it). */
export const OLLAMA_API_VERSION = "0.12.0";

/** Chat histories and prompts can be long. */
const BODY_LIMIT = 16 * 1024 * 1024;

/** Ollama's expires_at for a model kept forever: as far ahead as Ollama puts it. */
const FOREVER_MS = 292 * 365.25 * 24 * 3_600_000;

const norm = (s: string) => s.toLowerCase();
const ns = (ms: number) => Math.max(0, Math.round(ms * 1e6));

export interface OllamaDeps {
  router: InferenceRouter;
  registry: ClusterRegistry;
  scheduler: Scheduler;
  hives: HiveClient;
  clusterToken: string;
  log: Logger;
  rbeeVersion: string;
}

type Kind = "chat" | "generate";

/**
 * Ollama's API (as Ollama serves it on 11434), translated onto the scheduler and router like the
 * OpenAI routes: models, running models, chat and generate with NDJSON streaming, embeddings, pull
 * (onto rbee's model downloads) and delete. Errors in Ollama's shape (ollama-errors.ts).
 */
export class OllamaRoutes {
  readonly #startedAt = new Date().toISOString();
  /** Context sizes of running workers, read once from their /info. */
  #contextSizes = new Map<string, number | undefined>();

  constructor(private readonly d: OllamaDeps) {}

  /** The routes, on the queen's router or on a router of their own (RBEE_OLLAMA_PORT). */
  register(router: Router, before: Parameters<Router["get"]>[2]): Router {
    return router
      .get("/api/version", (ctx) => this.version(ctx), before)
      .get("/api/tags", (ctx) => this.tags(ctx), before)
      .get("/api/ps", (ctx) => this.ps(ctx), before)
      .post("/api/show", (ctx) => this.show(ctx), before)
      .post("/api/chat", (ctx) => this.chat(ctx), before)
      .post("/api/generate", (ctx) => this.generate(ctx), before)
      .post("/api/embed", (ctx) => this.embed(ctx), before)
      .post("/api/embeddings", (ctx) => this.embeddings(ctx), before)
      .post("/api/pull", (ctx) => this.pull(ctx), before)
      .delete("/api/delete", (ctx) => this.delete(ctx), before);
  }

  version(ctx: HttpContext): void {
    ctx.send(200, { version: OLLAMA_API_VERSION, rbee_version: this.d.rbeeVersion });
  }

  tags(ctx: HttpContext): void {
    const models = this.d.registry.servableModels().map((id) => {
      const entry = this.#catalogEntry(id);
      const size = entry?.size_bytes ?? 0;
      return {
        name: ollamaName(id),
        model: ollamaName(id),
        modified_at: this.#startedAt,
        size,
        digest: modelDigest(id, size),
        details: modelDetails(entry?.gguf),
      };
    });
    ctx.send(200, { models });
  }

  async ps(ctx: HttpContext): Promise<void> {
    const now = Date.now();
    const byModel = new Map<string, WorkerEntry[]>();
    for (const w of this.d.registry.workers.values()) {
      if (w.stopping || !["Starting", "Ready", "Busy"].includes(w.report.status)) continue;
      const list = byModel.get(w.report.model) ?? [];
      list.push(w);
      byModel.set(w.report.model, list);
    }
    const models = await Promise.all(
      [...byModel].map(async ([id, workers]) => {
        const entry = this.#catalogEntry(id);
        let size = 0;
        let sizeVram = 0;
        let expires = 0;
        for (const w of workers) {
          const memory = w.memoryBytes || w.report.heartbeat?.memory_used || w.report.heartbeat?.vram_used || 0;
          size += memory;
          if (w.report.device !== "cpu") sizeVram += memory;
          const idle = w.inFlight > 0 ? 0 : Math.max(0, now - w.lastActivity);
          const left = Number.isFinite(w.keepAliveMs) ? Math.max(0, w.keepAliveMs - idle) : FOREVER_MS;
          expires = Math.max(expires, now + left);
        }
        const contexts = await Promise.all(workers.map((w) => this.#contextSize(w)));
        const context = contexts.find((c) => c !== undefined);
        return {
          name: ollamaName(id),
          model: ollamaName(id),
          size,
          digest: modelDigest(id, entry?.size_bytes ?? 0),
          details: modelDetails(entry?.gguf),
          expires_at: new Date(expires).toISOString(),
          size_vram: sizeVram,
          ...(context === undefined ? {} : { context_length: context }),
        };
      }),
    );
    ctx.send(200, { models });
  }

  async show(ctx: HttpContext): Promise<void> {
    const req = await ctx.json(OllamaShowRequest, "show request");
    const name = (req.model ?? req.name) as string;
    const id = this.#known(modelId(name));
    const entry = this.#catalogEntry(id);
    const worker = this.d.registry.routableWorkers(id)[0];
    const contextSize = worker ? await this.#contextSize(worker) : undefined;
    const capabilities = new Set<string>();
    const workers = [...this.d.registry.workers.values()].filter((w) => norm(w.report.model) === norm(id));
    const caps = workers.flatMap((w) => w.report.capabilities ?? w.report.heartbeat?.capabilities ?? []);
    if (workers.length === 0 || caps.includes("text-generation")) capabilities.add("completion");
    if (caps.includes("embeddings")) capabilities.add("embedding");
    if (caps.includes("tools")) capabilities.add("tools");
    const parameters = contextSize === undefined ? "" : `num_ctx ${contextSize}`;
    ctx.send(200, {
      license: "",
      modelfile: `# served by rbee ${this.d.rbeeVersion}\nFROM ${entry?.path ?? id}\n${parameters === "" ? "" : `PARAMETER ${parameters}\n`}`,
      parameters,
      // rbee formats chats with the model's own (Jinja) template from the GGUF file, not a Go template
      template: "{{ .Prompt }}",
      system: "",
      details: modelDetails(entry?.gguf),
      model_info: modelInfo(entry?.gguf, contextSize),
      capabilities: [...capabilities],
      modified_at: this.#startedAt,
    });
  }

  async chat(ctx: HttpContext): Promise<void> {
    const req = await ctx.json(OllamaChatRequest, "chat request", BODY_LIMIT);
    noteIgnoredFields(ctx, this.d.log, OllamaChatRequest, req);
    const messages = chatMessages(req);
    const tools = ollamaTools(req);
    await this.#answer(ctx, "chat", req, messages.length === 0 ? undefined : { messages, ...tools });
  }

  async generate(ctx: HttpContext): Promise<void> {
    const req = await ctx.json(OllamaGenerateRequest, "generate request", BODY_LIMIT);
    noteIgnoredFields(ctx, this.d.log, OllamaGenerateRequest, req);
    const input = generateInput(req);
    await this.#answer(ctx, "generate", req, !req.prompt ? undefined : input);
  }

  async embed(ctx: HttpContext): Promise<void> {
    const req = await ctx.json(OllamaEmbedRequest, "embed request", BODY_LIMIT);
    noteIgnoredFields(ctx, this.d.log, OllamaEmbedRequest, req);
    if (req.dimensions !== undefined) unsupported("dimensions", "dimensions");
    const input = typeof req.input === "string" ? [req.input] : req.input;
    const t0 = performance.now();
    const res = await this.d.router.embed(
      modelId(req.model),
      { input },
      { signal: ctx.signal, admin: ctx.facts.admin, keepAliveMs: ollamaKeepAliveMs(req.keep_alive) },
    );
    ctx.send(200, {
      model: req.model,
      embeddings: res.embeddings.map(normalize),
      total_duration: ns(performance.now() - t0),
      load_duration: 0,
      prompt_eval_count: res.prompt_tokens,
    });
  }

  async embeddings(ctx: HttpContext): Promise<void> {
    const req = await ctx.json(OllamaEmbeddingsRequest, "embeddings request", BODY_LIMIT);
    noteIgnoredFields(ctx, this.d.log, OllamaEmbeddingsRequest, req);
    if (req.prompt === "") {
      ctx.send(200, { embedding: [] });
      return;
    }
    const res = await this.d.router.embed(
      modelId(req.model),
      { input: [req.prompt] },
      { signal: ctx.signal, admin: ctx.facts.admin, keepAliveMs: ollamaKeepAliveMs(req.keep_alive) },
    );
    ctx.send(200, { embedding: res.embeddings[0] ?? [] });
  }

  /**
   * `POST /api/pull` onto rbee's model download (the scheduler picks the hive, as `rbee model
   * download` does). The NDJSON stream starts with the download's first progress, so a name that
   * cannot be found is still a plain 404.
   */
  async pull(ctx: HttpContext): Promise<void> {
    const req = await ctx.json(OllamaPullRequest, "pull request");
    const name = (req.model ?? req.name) as string;
    const ref = modelId(name);
    const stream = req.stream ?? true;
    let out: NdjsonWriter | undefined;
    let digest = "";
    const open = (): NdjsonWriter => {
      if (out) return out;
      out = new NdjsonWriter(ctx.res);
      void out.send({ status: "pulling manifest" });
      return out;
    };
    try {
      const resolved = await this.d.scheduler.resolveModel(ref, {
        signal: ctx.signal,
        admin: ctx.facts.admin,
        progress: (p) => {
          if (!stream) return;
          digest ||= modelDigest(ref, p.total ?? 0);
          void open().send({
            status: `pulling ${digest.slice(0, 12)}`,
            digest: `sha256:${digest}`,
            total: p.total ?? undefined,
            completed: p.done,
          });
        },
      });
      ctx.logFields.model = resolved.model;
      if (!stream) {
        ctx.send(200, { status: "success" });
        return;
      }
      const w = open();
      for (const status of ["verifying sha256 digest", "writing manifest", "success"]) await w.send({ status });
      w.end();
    } catch (err) {
      if (!out) throw err;
      await out.send({ error: toRbeeError(err).message });
      out.end();
    }
  }

  /** `DELETE /api/delete`: removes the model from every hive's catalog that has it. */
  async delete(ctx: HttpContext): Promise<void> {
    const req = await ctx.json(OllamaDeleteRequest, "delete request");
    const ref = modelId((req.model ?? req.name) as string);
    let removed = 0;
    for (const { hive, model } of this.d.registry.findModel(ref)) {
      if (hive.url === "") continue;
      await this.d.hives.removeModel(hive, model.id);
      this.d.registry.forgetModel(hive.id, model.id);
      removed++;
    }
    if (removed === 0) throw new ModelNotFoundError(ref, "no hive has it in its catalog; see GET /api/tags");
    ctx.send(200, {});
  }

  /** The catalog entry of a model on some live hive (for its size and GGUF header). */
  #catalogEntry(id: string): HiveModel | undefined {
    return this.d.registry.findModel(id)[0]?.model;
  }

  /** The model's id as rbee serves it, or a 404 in Ollama's words. */
  #known(id: string): string {
    const found = this.d.registry.servableModels().find((m) => norm(m) === norm(id));
    if (found === undefined) throw new ModelNotFoundError(id, "pull it first (POST /api/pull) or see GET /api/tags");
    return found;
  }

  async #contextSize(w: WorkerEntry): Promise<number | undefined> {
    if (this.#contextSizes.has(w.id)) return this.#contextSizes.get(w.id);
    if (!["Ready", "Busy"].includes(w.report.status)) return undefined;
    try {
      const info = await requestJson(`${w.report.url}/info`, WorkerInfo, {
        token: this.d.clusterToken,
        signal: AbortSignal.timeout(1000),
        what: `worker ${w.id}`,
      });
      this.#contextSizes.set(w.id, info.context_size);
      if (this.#contextSizes.size > 1024) this.#contextSizes.delete(this.#contextSizes.keys().next().value as string);
      return info.context_size;
    } catch {
      return undefined;
    }
  }

  /**
   * Chat and generate. Without input, Ollama loads the model (keep_alive 0: unloads it); with it,
   * the answer streams as NDJSON from the first token (so a failure before it, such as an unknown
   * model, is still a plain error with its status) or comes in one object with `stream: false`.
   */
  async #answer(
    ctx: HttpContext,
    kind: Kind,
    req: OllamaChatRequest | OllamaGenerateRequest,
    input:
      | Pick<InferRequest, "prompt" | "messages" | "suffix" | "tools" | "tool_choice" | "parallel_tool_calls">
      | undefined,
  ): Promise<void> {
    const model = modelId(req.model);
    const keepAliveMs = ollamaKeepAliveMs(req.keep_alive);
    const sampling: Sampling = {
      ...samplingFrom(req.options),
      json_schema: jsonSchemaFrom(req.format),
      ...(req.logprobs ? { logprobs: Number(req.top_logprobs ?? 0) } : {}),
    };
    const withLogprobs = (lp: readonly TokenLogprob[] | undefined) =>
      req.logprobs && lp ? { logprobs: ollamaLogprobs(lp) } : {};
    ctx.logFields.model = model;
    const reply = (text: string, done: boolean, calls?: InferResponse["tool_calls"]) =>
      kind === "chat"
        ? {
            model: req.model,
            created_at: new Date().toISOString(),
            message: {
              role: "assistant",
              content: text,
              ...(calls && calls.length > 0 ? { tool_calls: ollamaToolCalls(calls) } : {}),
            },
            done,
          }
        : { model: req.model, created_at: new Date().toISOString(), response: text, done };
    if (input === undefined) {
      const reason = keepAliveMs === 0 ? await this.#unload(model) : await this.#load(model, ctx, keepAliveMs);
      ctx.send(200, { ...reply("", true), done_reason: reason });
      return;
    }
    const t0 = performance.now();
    const final = (r: InferResponse) => ({
      done_reason: r.finish_reason === "length" ? "length" : "stop",
      total_duration: ns(performance.now() - t0),
      load_duration: ns(performance.now() - t0 - r.duration_ms),
      prompt_eval_count: r.prompt_tokens,
      prompt_eval_duration: ns(r.time_to_first_token_ms ?? 0),
      eval_count: r.tokens_generated,
      eval_duration: ns(r.duration_ms - (r.time_to_first_token_ms ?? 0)),
    });
    const stream = req.stream ?? true;
    if (!stream) {
      const { response } = await this.d.router.infer(
        model,
        { ...sampling, ...input },
        { signal: ctx.signal, admin: ctx.facts.admin, keepAliveMs },
      );
      ctx.send(200, {
        ...reply(response.text, true, response.tool_calls),
        ...withLogprobs(response.logprobs),
        ...final(response),
      });
      return;
    }
    let out: NdjsonWriter | undefined;
    try {
      const { response } = await this.d.router.infer(
        model,
        { ...sampling, ...input },
        {
          signal: ctx.signal,
          admin: ctx.facts.admin,
          keepAliveMs,
          onToken: (text, _index, logprobs) => {
            out ??= new NdjsonWriter(ctx.res);
            return out.write({ ...reply(text, false), ...withLogprobs(logprobs) });
          },
        },
      );
      out ??= new NdjsonWriter(ctx.res);
      // Ollama streams each tool call whole, in a message of its own before the last line
      if (response.tool_calls && response.tool_calls.length > 0) await out.send(reply("", false, response.tool_calls));
      await out.send({ ...reply("", true), ...final(response) });
      out.end();
    } catch (err) {
      if (!out) throw err;
      const e = toRbeeError(err);
      ctx.logFields.error_code = e.code;
      await out.send({ error: e.message });
      out.end();
    }
  }

  /** Loads the model as Ollama's empty request does: a worker is placed (or found) and kept for keep_alive. */
  async #load(model: string, ctx: HttpContext, keepAliveMs: number | undefined): Promise<"load"> {
    const lease = await this.d.scheduler.acquire(model, {
      signal: ctx.signal,
      admin: ctx.facts.admin,
      capability: "text-generation",
    });
    lease.release(keepAliveMs);
    return "load";
  }

  /** keep_alive 0 without input: the model's workers that hives manage are stopped now, as Ollama unloads. */
  async #unload(model: string): Promise<"unload"> {
    const workers = [...this.d.registry.workers.values()].filter(
      (w) => norm(w.report.model) === norm(model) && !w.stopping && this.d.registry.hives.get(w.hiveId)?.url,
    );
    if (workers.length === 0 && this.d.registry.routableWorkers(model).length === 0) this.#known(model);
    await Promise.all(workers.map((w) => this.d.scheduler.stopWorker(w, "unloaded with keep_alive 0 (Ollama API)")));
    return "unload";
  }
}

/** A router with the Ollama API alone, for RBEE_OLLAMA_PORT (Ollama's own port, 11434). */
export function ollamaOnlyRouter(routes: OllamaRoutes, before: Parameters<Router["get"]>[2]): Router {
  return routes
    .register(new Router(), before)
    .get("/", (ctx) => ctx.sendText(200, "Ollama is running"))
    .get("/health", (ctx) => ctx.send(200, { status: "ok" }));
}
