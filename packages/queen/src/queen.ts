import { createRequire } from "node:module";
import {
  CreateApiKeyRequest,
  CreateJobRequest,
  HiveHeartbeat,
  isTerminalJobEvent,
  PROTOCOL_VERSION,
  RbeeError,
  ValidationError,
  WorkerHeartbeat,
  workerConfigFor,
} from "@rbee/contract";
import {
  bearerAuth,
  createLogger,
  type HttpContext,
  HttpServer,
  keyFileIsShared,
  type Logger,
  loadOrCreateClusterToken,
  loadServerTls,
  Router,
  type ServerTls,
} from "@rbee/server-kit";
import { writeAnthropicError } from "./anthropic/anthropic-errors.js";
import { AnthropicRoutes } from "./anthropic/anthropic-routes.js";
import { type QueenConfig, type QueenOptions, resolveQueenConfig } from "./config.js";
import { apiKeyAuth, keyAdminAuth } from "./http/api-key-auth.js";
import { Dashboard } from "./http/dashboard.js";
import { sendWorkerLogs } from "./http/worker-logs.js";
import { WorkerPackageCatalogs } from "./http/worker-package-catalogs.js";
import { jobRunner } from "./jobs/job-runners.js";
import { JobStore } from "./jobs/job-store.js";
import { QueenMetrics } from "./metrics.js";
import { writeOllamaError } from "./ollama/ollama-errors.js";
import { OllamaRoutes, ollamaOnlyRouter } from "./ollama/ollama-routes.js";
import { ImageRoutes } from "./openai/images.js";
import { OpenAiRoutes } from "./openai/openai-routes.js";
import { ResponsesRoute } from "./openai/responses.js";
import { ClusterRegistry } from "./registry/cluster-registry.js";
import { clusterWorkerTypes } from "./registry/worker-types-view.js";
import { HiveClient } from "./scheduler/hive-client.js";
import { InferenceRouter } from "./scheduler/inference-router.js";
import { Scheduler } from "./scheduler/scheduler.js";
import { ApiKeyStore } from "./store/api-key-store.js";
import { ReplicaStore } from "./store/replica-store.js";

const require = createRequire(import.meta.url);
export const QUEEN_VERSION = (require("../package.json") as { version: string }).version;

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

/** The DNS names a certificate lists (`DNS:queen-box, IP Address:10.0.0.2` → queen-box): names the queen serves. */
function certificateNames(tls: ServerTls | undefined): string[] {
  if (tls === undefined) return [];
  return tls.names
    .split(",")
    .map((n) => n.trim())
    .filter((n) => /^DNS:/i.test(n))
    .map((n) => n.slice(4));
}

function protocolCheck(version: number, who: string): void {
  if (version !== PROTOCOL_VERSION) {
    throw new RbeeError(
      `${who} speaks protocol ${version} and this queen speaks ${PROTOCOL_VERSION}: run the same rbee version on every machine (${version > PROTOCOL_VERSION ? "upgrade the queen" : `upgrade ${who}`})`,
      { statusCode: 400, code: "protocol_mismatch" },
    );
  }
}

/** The queen: the one public entry point. Its state is rebuilt from heartbeats; nothing is stored but keys. */
export class Queen {
  readonly config: QueenConfig;
  readonly log: Logger;
  readonly registry: ClusterRegistry;
  readonly scheduler: Scheduler;
  readonly hives: HiveClient;
  readonly router: InferenceRouter;
  /** The OpenAI images route and the images it answers as URLs. */
  readonly images: ImageRoutes;
  readonly jobs: JobStore;
  readonly keys: ApiKeyStore;
  readonly metrics: QueenMetrics;
  readonly clusterToken: string;
  readonly startedAt = new Date().toISOString();
  #http: HttpServer;
  /** The Ollama API alone on its own port (RBEE_OLLAMA_PORT), when asked for. */
  #ollamaHttp: HttpServer | undefined;
  #ollamaUrl = "";
  #router: Router;
  #url = "";
  #timers: NodeJS.Timeout[] = [];
  /** `<hive>/<package>` pairs whose auto-update check runs now. */
  readonly #autoUpdating = new Set<string>();
  #eventStreams = new Set<() => void>();
  #tls: ServerTls | undefined;

  constructor(options: QueenOptions = {}) {
    this.config = resolveQueenConfig(options);
    this.log = options.log ?? createLogger({ service: "queen" });
    this.jobs = new JobStore({ maxBytes: this.config.jobsMaxBytes });
    this.keys = new ApiKeyStore(this.config.configDir);
    if (!isLoopback(this.config.host) && !this.keys.enabled) {
      throw new Error(
        `refusing to listen on ${this.config.host} without API keys: anyone on the network could use it; create a key with \`rbee key create\` (or set RBEE_API_KEYS), or bind 127.0.0.1`,
      );
    }
    const tls = this.config.tls ? loadServerTls(this.config.tls) : undefined;
    this.clusterToken = loadOrCreateClusterToken(this.config.configDir);
    this.registry = new ClusterRegistry({
      defaultKeepAliveMs: this.config.defaultKeepAliveMs,
      heartbeatIntervalMs: this.config.heartbeatIntervalMs,
    });
    this.hives = new HiveClient(this.clusterToken);
    this.scheduler = new Scheduler(this.registry, this.hives, {
      maxWaitingPerModel: this.config.maxWaitingPerModel,
      defaultKeepAliveMs: this.config.defaultKeepAliveMs,
      policy: this.config.placement,
      replicas: new ReplicaStore(this.config.configDir),
      settleMs: 2 * this.config.heartbeatIntervalMs,
      defaultWorkerType: this.config.defaultWorkerType,
      defaultImageWorkerType: this.config.defaultImageWorkerType,
      log: this.log,
    });
    this.router = new InferenceRouter(
      this.scheduler,
      this.clusterToken,
      this.log,
      this.config.firstByteTimeoutMs,
      (worker) => {
        // it did not answer: route nothing more to it until its hive reports it again, and find out
        // whether the whole machine is gone
        this.registry.workerUnanswered(worker);
        return this.scheduler.checkHive(worker.hiveId);
      },
    );
    this.images = new ImageRoutes(this.router, this.log);
    this.metrics = new QueenMetrics(this.registry, () => this.scheduler);
    const ollama = new OllamaRoutes({
      router: this.router,
      registry: this.registry,
      scheduler: this.scheduler,
      hives: this.hives,
      clusterToken: this.clusterToken,
      log: this.log,
      rbeeVersion: QUEEN_VERSION,
    });
    this.#router = this.#routes(ollama);
    this.#http = new HttpServer({
      router: this.#router,
      log: this.log,
      metrics: this.metrics,
      quietRoutes: ["/health", "/metrics", "/v1/hive-heartbeat", "/v1/worker-heartbeat"],
      tls,
      // Ollama's and Anthropic's routes answer in their own error shapes, unknown paths under them too
      errorWriter: (ctx) => {
        const path = ctx.url.pathname;
        if (path.startsWith("/api/")) return writeOllamaError;
        if (path === "/v1/messages" || path.startsWith("/v1/messages/")) return writeAnthropicError;
        return undefined;
      },
      // the queen's routes are open while no API key exists: a page in the user's browser must not
      // reach them by DNS rebinding (Host) or cross-site requests (Origin)
      guard: { checkHost: true, allowedHosts: certificateNames(tls) },
    });
    if (this.config.ollamaPort !== undefined)
      this.#ollamaHttp = new HttpServer({
        router: ollamaOnlyRouter(ollama, [apiKeyAuth(this.keys, this.clusterToken)]),
        log: this.log,
        metrics: this.metrics,
        quietRoutes: ["/", "/health"],
        tls,
        errorWriter: () => writeOllamaError,
      });
    this.#tls = tls;
  }

  /** The worker catalog servers installs look in when a request names none (RBEE_CATALOG_URLS). */
  get catalogUrls(): readonly string[] {
    return this.config.catalogUrls;
  }

  /**
   * Starts an `update_worker_package` job for each package some hive installed with auto-update
   * (within its major version; a failed readiness check rolls that hive back). Runs every
   * `packageUpdateIntervalMs`; returns the jobs' ids.
   */
  autoUpdatePackages(): string[] {
    const started: string[] = [];
    for (const h of this.registry.hives.values()) {
      if (h.state !== "live") continue;
      for (const t of h.workerTypes ?? []) {
        if ((t.package as { auto_update?: boolean } | undefined)?.auto_update !== true) continue;
        const key = `${h.id}/${t.id}`;
        if (this.#autoUpdating.has(key)) continue; // the last check is still running
        const operation = { type: "update_worker_package" as const, id: t.id, hive: h.id };
        const job = this.jobs.start(operation, jobRunner(operation, this));
        this.#autoUpdating.add(key);
        job.subscribe((e) => {
          if (isTerminalJobEvent(e)) this.#autoUpdating.delete(key);
        });
        this.log.info({ worker_type: t.id, hive_id: h.id, job_id: job.id }, "checking an auto-updated worker package");
        started.push(job.id);
      }
    }
    return started;
  }

  get url(): string {
    return this.#url;
  }

  /** Where the Ollama API is served alone (RBEE_OLLAMA_PORT); "" when it is not. */
  get ollamaUrl(): string {
    return this.#ollamaUrl;
  }

  /** Every route the queen serves (so that the security and fuzz tests walk them all). */
  routes(): ReadonlyArray<{ method: string; pattern: string }> {
    return this.#router.routes();
  }

  async start(): Promise<this> {
    const bound = await this.#http.listen(this.config.port, this.config.host);
    this.#url = bound.url;
    if (this.#ollamaHttp && this.config.ollamaPort !== undefined) {
      try {
        this.#ollamaUrl = (await this.#ollamaHttp.listen(this.config.ollamaPort, this.config.host)).url;
      } catch (err) {
        await this.#http.close();
        throw err;
      }
    }
    const sweep = setInterval(() => this.registry.sweep(), 500);
    const idle = setInterval(() => {
      this.scheduler.reconcile();
      this.scheduler
        .sweepIdle()
        .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, "idle sweep failed"));
    }, this.config.sweepIntervalMs);
    sweep.unref();
    idle.unref();
    this.#timers.push(sweep, idle);
    if (this.config.packageUpdateIntervalMs > 0) {
      const updates = setInterval(() => this.autoUpdatePackages(), this.config.packageUpdateIntervalMs);
      updates.unref();
      this.#timers.push(updates);
    }
    this.registry.subscribe((e) => {
      if (e.type === "hive_joined" || e.type === "hive_state" || e.type === "worker_removed")
        this.log.info({ event: e }, e.type);
    });
    if (this.#tls) {
      this.log.info({ cert: this.#tls.certFile, names: this.#tls.names, valid_to: this.#tls.validTo }, "serving HTTPS");
      if (keyFileIsShared(this.#tls.keyFile))
        this.log.warn({ key: this.#tls.keyFile }, "the TLS private key is readable by other users; chmod 600 it");
    } else if (!isLoopback(this.config.host)) {
      this.log.warn(
        { host: this.config.host },
        "serving plain HTTP beyond this machine: API keys and prompts cross the network unencrypted; see docs/security.md to enable TLS",
      );
    }
    this.log.info(
      {
        url: this.#url,
        version: QUEEN_VERSION,
        api_keys: this.keys.enabled,
        ...(this.#ollamaUrl ? { ollama_url: this.#ollamaUrl } : {}),
      },
      "queen ready",
    );
    return this;
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    for (const end of this.#eventStreams) end();
    const servers = this.#ollamaHttp ? [this.#http, this.#ollamaHttp] : [this.#http];
    await Promise.race([Promise.all(servers.map((s) => s.close())), new Promise((r) => setTimeout(r, 2000).unref())]);
    for (const s of servers) s.destroyConnections();
  }

  #routes(ollama: OllamaRoutes): Router {
    const api = [apiKeyAuth(this.keys, this.clusterToken)];
    const cluster = [
      bearerAuth({
        tokens: () => [this.clusterToken],
        what: "cluster token",
        hint: `hives and workers read it from ${this.config.configDir}/cluster-token (or RBEE_CLUSTER_TOKEN)`,
      }),
    ];
    const openai = new OpenAiRoutes(this.router, this.registry, this.log);
    const responses = new ResponsesRoute(this.router, this.log);
    const keyAdmin = [keyAdminAuth(this.keys, this.clusterToken)];
    const dashboard = new Dashboard();
    const anthropic = new AnthropicRoutes(this.router, this.log);
    const packages = new WorkerPackageCatalogs(this.registry, () => this.config.catalogUrls);
    return ollama
      .register(new Router(), api)
      .get("/health", (ctx) => ctx.send(200, { status: "ok", version: QUEEN_VERSION }))
      .get("/", (ctx) =>
        dashboard.index(ctx, () => ({
          name: "rbee queen",
          version: QUEEN_VERSION,
          openai_base_url: `${this.#url}/v1`,
        })),
      )
      .get("/assets/:file", (ctx) => dashboard.asset(ctx))
      .get(
        "/metrics",
        async (ctx) => {
          const { contentType, body } = await this.metrics.render();
          ctx.sendText(200, body, contentType);
        },
        api,
      )
      .get("/v1/models", (ctx) => openai.models(ctx), api)
      .get("/v1/models/:model", (ctx) => openai.model(ctx), api)
      .post("/v1/chat/completions", (ctx) => openai.chat(ctx), api)
      .post("/v1/completions", (ctx) => openai.completions(ctx), api)
      .post("/v1/embeddings", (ctx) => openai.embeddings(ctx), api)
      .post("/v1/responses", (ctx) => responses.create(ctx), api)
      .post("/v1/messages", (ctx) => anthropic.messages(ctx), api)
      .post("/v1/messages/count_tokens", (ctx) => anthropic.countTokens(ctx), api)
      .post("/v1/images/generations", (ctx) => this.images.generate(ctx), api)
      .get("/v1/images/files/:file", (ctx) => this.images.file(ctx), api)
      .post("/v1/jobs", (ctx) => this.#createJob(ctx), api)
      .get("/v1/jobs", (ctx) => ctx.send(200, { jobs: this.jobs.list().map((j) => j.summary()) }), api)
      .get(
        "/v1/jobs/:id",
        (ctx) => {
          const job = this.jobs.get(ctx.params.id ?? "");
          ctx.send(200, { job_id: job.id, status: job.status, operation: job.operation, events: job.events.length });
        },
        api,
      )
      .get("/v1/jobs/:id/stream", (ctx) => this.#streamJob(ctx), api)
      .delete(
        "/v1/jobs/:id",
        (ctx) => {
          const job = this.jobs.get(ctx.params.id ?? "");
          job.cancel();
          ctx.send(200, { job_id: job.id, status: job.status });
        },
        api,
      )
      .get("/v1/cluster", (ctx) => ctx.send(200, this.snapshot()), api)
      .get("/v1/workers", (ctx) => ctx.send(200, { workers: this.snapshot().workers }), api)
      .get("/v1/workers/:id/logs", (ctx) => sendWorkerLogs(ctx, this.registry, this.clusterToken), api)
      .get(
        "/v1/worker-types",
        (ctx) => ctx.send(200, clusterWorkerTypes(this.registry, this.config.defaultWorkerType)),
        api,
      )
      .get("/v1/worker-packages", (ctx) => packages.list(ctx), api)
      .get("/v1/worker-packages/:id", (ctx) => packages.detail(ctx), api)
      .get(
        "/v1/catalog",
        (ctx) => {
          const models = [...this.registry.hives.values()].flatMap((h) =>
            h.models.map((m) => ({ ...m, hive_id: h.id })),
          );
          ctx.send(200, { models });
        },
        api,
      )
      .get("/v1/events", (ctx) => this.#streamEvents(ctx), api)
      .post(
        "/v1/hive-heartbeat",
        async (ctx) => {
          const hb = await ctx.json(HiveHeartbeat, "hive heartbeat", 4 * 1024 * 1024);
          protocolCheck(hb.protocol_version, `hive ${hb.hive_id}`);
          this.registry.ingestHiveHeartbeat(hb);
          ctx.send(200, { ack: true, commands: this.registry.hiveCommands(hb.hive_id) });
        },
        cluster,
      )
      .post(
        "/v1/worker-heartbeat",
        async (ctx) => {
          const hb = await ctx.json(WorkerHeartbeat, "worker heartbeat");
          protocolCheck(hb.protocol_version, `worker ${hb.worker_id}`);
          this.registry.ingestDirectHeartbeat(hb);
          ctx.send(200, { ack: true, commands: [] });
        },
        cluster,
      )
      .get("/v1/keys", (ctx) => ctx.send(200, { keys: this.keys.list() }), keyAdmin)
      .post(
        "/v1/keys",
        async (ctx) => {
          const { name, admin } = await ctx.json(CreateApiKeyRequest, "key request");
          ctx.send(201, this.keys.create(name, admin));
        },
        keyAdmin,
      )
      .delete(
        "/v1/keys/:id",
        (ctx) => {
          this.keys.remove(ctx.params.id ?? "");
          ctx.res.writeHead(204).end();
        },
        keyAdmin,
      );
  }

  snapshot() {
    const cluster = this.registry.snapshot({ version: QUEEN_VERSION, started_at: this.startedAt, url: this.#url });
    return { ...cluster, minimums: this.scheduler.minimums(), groups: this.scheduler.groups.view() };
  }

  async #createJob(ctx: HttpContext): Promise<void> {
    const { operation } = await ctx.json(CreateJobRequest, "job request");
    if (operation.type === "spawn_worker" && operation.threads !== undefined)
      checkThreads(operation.threads, this.registry, operation.hive);
    if (operation.type === "spawn_worker" && operation.worker_type !== undefined) {
      // a type the queen knows (built in, or a package a hive reported with its config_schema):
      // a configuration it refuses is the request's fault, 400 now, not a failed job later
      const type = this.scheduler.findType(operation.worker_type);
      if (type !== undefined) workerConfigFor(type.id, type.configSchema, operation.config);
    }
    const job = this.jobs.start(operation, jobRunner(operation, this, ctx.facts.admin === true));
    job.subscribe((e) => {
      if (isTerminalJobEvent(e)) this.metrics.jobs.inc({ operation: operation.type, outcome: e.type });
    });
    ctx.logFields.job_id = job.id;
    ctx.send(202, { job_id: job.id, sse_url: `/v1/jobs/${job.id}/stream` });
  }

  /** A job's events as SSE (event = type, id = seq); Last-Event-ID resumes after that event. */
  async #streamJob(ctx: HttpContext): Promise<void> {
    const job = this.jobs.get(ctx.params.id ?? "");
    const last = Number(ctx.header("last-event-id") ?? ctx.url.searchParams.get("after") ?? -1);
    const sse = ctx.sse();
    // the headers leave now, not with the job's first event: a client's first-byte timeout holds
    void sse.comment(job.id);
    await new Promise<void>((resolve) => {
      const keepAlive = setInterval(() => void sse.comment("keep-alive"), 15_000);
      const finish = () => {
        clearInterval(keepAlive);
        unsubscribe();
        resolve();
      };
      const unsubscribe = job.subscribe(
        (e) => {
          void sse.send(e.type, e, e.seq);
          if (isTerminalJobEvent(e)) setImmediate(finish);
        },
        Number.isFinite(last) ? last : -1,
      );
      if (ctx.signal.aborted) finish();
      else ctx.signal.addEventListener("abort", finish, { once: true });
      if (job.done && (job.events.at(-1)?.seq ?? -1) <= last) finish();
    });
  }

  /** Cluster changes as SSE: first the whole snapshot, then one event per change. */
  async #streamEvents(ctx: HttpContext): Promise<void> {
    const sse = ctx.sse();
    await sse.send("snapshot", { type: "snapshot", at: Date.now(), cluster: this.snapshot() });
    await new Promise<void>((resolve) => {
      const keepAlive = setInterval(() => void sse.comment("keep-alive"), 15_000);
      const unsubscribe = this.registry.subscribe((e) => void sse.send(e.type, e));
      const end = () => {
        clearInterval(keepAlive);
        unsubscribe();
        this.#eventStreams.delete(end);
        resolve();
      };
      this.#eventStreams.add(end);
      if (ctx.signal.aborted) end();
      else ctx.signal.addEventListener("abort", end, { once: true });
    });
  }
}

/**
 * A spawn that asks for more threads than the cores of the hive it names (or of every live hive)
 * would only fail at the worker: refuse it with a 400 when the job is created.
 */
function checkThreads(threads: number, registry: ClusterRegistry, hiveId: string | undefined): void {
  let most = 0;
  for (const hive of registry.hives.values()) {
    if (hive.state !== "live" || (hiveId !== undefined && hive.id !== hiveId)) continue;
    for (const d of hive.devices) if (d.kind === "cpu" && d.cores !== undefined) most = Math.max(most, d.cores);
  }
  if (most > 0 && threads > most) {
    throw new ValidationError(
      `threads: ${threads} is more than the ${most} cores of ${hiveId === undefined ? "the largest hive" : `hive ${hiveId}`}; use at most ${most}`,
      "operation.threads",
    );
  }
}

/** Starts a queen in this process (tests, embedding). */
export async function startQueen(options: QueenOptions = {}): Promise<Queen> {
  return new Queen(options).start();
}

/** `rbee queen start --foreground`: runs until SIGTERM/SIGINT, then exits 0. */
export async function runQueen(options: QueenOptions = {}): Promise<never> {
  let queen: Queen;
  try {
    queen = await startQueen(options);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const message =
      e.code === "EADDRINUSE"
        ? `port ${options.port ?? resolveQueenConfig(options).port} is in use: another queen may be running (rbee queen status), or pick another port with --port`
        : e.message;
    process.stderr.write(`rbee queen: ${message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    queen.log.info({ signal }, "stopping");
    void queen.close().then(() => process.exit(0));
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  return new Promise<never>(() => {});
}
