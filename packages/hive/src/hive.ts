import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism, networkInterfaces } from "node:os";
import { dirname, join } from "node:path";
import { hfHubCache, ModelCatalog, toHiveModel } from "@rbee/catalog";
import {
  type EngineBinary,
  type HeartbeatCommand,
  type HiveCommand,
  type HiveHeartbeat,
  type HiveModel,
  type HiveWorkerReport,
  type InstalledWorkerType,
  type InstallWorkerPackageRequest,
  type ModelFormat,
  type ModelInspection,
  type ModelPeer,
  PROTOCOL_VERSION,
  RbeeError,
  ShuttingDownError,
  type SpawnWorkerRequest,
  ValidationError,
  type WorkerHeartbeat,
  workerConfigFor,
} from "@rbee/contract";
import { listEngines, VersionProbeCache } from "@rbee/engines";
import {
  cachePaths,
  createLogger,
  HttpServer,
  keyFileIsShared,
  type Logger,
  loadOrCreateClusterToken,
  loadServerTls,
  type ServerTls,
  TLS_CA_ENV,
  TLS_CERT_ENV,
  TLS_KEY_ENV,
  tlsEnv,
} from "@rbee/server-kit";
import { WORKER_TYPES } from "@rbee/worker-types";
import type { z } from "zod";
import { DeviceInventory } from "./device-inventory.js";
import { ModelNotAvailableError, WorkerNotFoundError } from "./errors.js";
import { groupMember } from "./group-member.js";
import { HiveMetrics } from "./hive-metrics.js";
import { type HiveOptions, type ResolvedHiveOptions, resolveHiveOptions } from "./hive-options.js";
import { hiveRoutes } from "./hive-routes.js";
import { defaultModelRoots, ModelPathPolicy } from "./model-paths.js";
import { PortAllocator } from "./port-allocator.js";
import { Provisioner, type ProvisionListener } from "./provisioner.js";
import { DEBOUNCE_MS, LOAD_DEBOUNCE_MS, QueenHeartbeat } from "./queen-heartbeat.js";
import { RestartPolicy } from "./restart-policy.js";
import { WorkerCatalog } from "./worker-catalog.js";
import { readLastLines, workerLogPath } from "./worker-log-file.js";
import { type InstallCallbacks, type InstallOutcome, WorkerPackages } from "./worker-packages.js";
import { WorkerRecords } from "./worker-records.js";
import { WorkerSupervisor } from "./worker-supervisor.js";

const require = createRequire(import.meta.url);
const VERSION = (require("../package.json") as { version: string }).version;

/** A spawn request after validation (defaults applied). */
export type SpawnWorkerInput = z.output<typeof SpawnWorkerRequest>;

/**
 * A running hive: its HTTP API, device inventory, model catalog, supervised workers and heartbeat
 * to the queen. Start one with {@link Hive.start} (or `startHive`); `close()` stops every worker
 * and the server.
 */
export class Hive {
  readonly id: string;
  readonly version = VERSION;
  readonly token: string;
  readonly options: ResolvedHiveOptions;
  readonly log: Logger;
  readonly catalog: ModelCatalog;
  readonly provisioner: Provisioner;
  readonly devices: DeviceInventory;
  /** The worker types this machine can run, with their engines (`<cache>/workers/`). */
  readonly workerCatalog: WorkerCatalog;
  /** Worker types installed from packages (a catalog server's), beside the built-in registry. */
  readonly packages: WorkerPackages;
  readonly metrics = new HiveMetrics();
  readonly startedAt = new Date();
  readonly #http: HttpServer;
  readonly #supervisor: WorkerSupervisor;
  readonly #queen: QueenHeartbeat;
  readonly #logsDir: string;
  #url = "";
  #advertiseUrl = "";
  #port = 0;
  #closing: Promise<void> | undefined;

  /**
   * Detects the devices, opens the catalog, listens, and starts the heartbeat to the queen.
   * @throws Error when the port is taken, the rbee command is missing, or an option is malformed;
   *   ValidationError when RBEE_DEVICES is invalid.
   */
  static async start(options: HiveOptions = {}): Promise<Hive> {
    const o = resolveHiveOptions(options);
    const log = o.log ?? createLogger({ service: "hive", bindings: { hive_id: o.hiveId } });
    if (!existsSync(o.rbeeBin)) {
      throw new Error(
        `cannot find the rbee command at ${o.rbeeBin}, which workers are started with; build rbee (npm run build) or set RBEE_BIN`,
      );
    }
    const tls = o.tls ? loadServerTls(o.tls) : undefined;
    const token = loadOrCreateClusterToken(o.configDir, o.env);
    const devices = await DeviceInventory.detect({ env: o.env, gpuRefreshMs: o.gpuRefreshMs, log });
    const hive = new Hive(o, log, token, devices, tls);
    await hive.#listen();
    return hive;
  }

  private constructor(
    o: ResolvedHiveOptions,
    log: Logger,
    token: string,
    devices: DeviceInventory,
    readonly tls: ServerTls | undefined,
  ) {
    this.options = o;
    this.id = o.hiveId;
    this.log = log;
    this.token = token;
    this.devices = devices;
    const paths = cachePaths(o.cacheDir);
    this.catalog = new ModelCatalog(paths.models);
    mkdirSync(paths.tmp, { recursive: true });
    const modelPaths = new ModelPathPolicy({
      explicit: [paths.models, hfHubCache(o.env), ...o.modelsDirs],
      defaults: o.defaultModelDirs ? defaultModelRoots() : [],
    });
    this.provisioner = new Provisioner({
      catalog: this.catalog,
      tmpDir: paths.tmp,
      env: o.env,
      log,
      token,
      modelPaths,
    });
    this.#logsDir = paths.logs;
    mkdirSync(paths.logs, { recursive: true });
    this.packages = new WorkerPackages({
      dir: paths.workers,
      tmpDir: paths.tmp,
      configDir: o.configDir,
      builtIn: Object.keys(WORKER_TYPES),
      log,
    });
    this.workerCatalog = new WorkerCatalog({
      installed: () => this.packages.types(),
      dir: paths.workers,
      findEngines: o.findEngines ?? defaultFindEngines(o),
      log,
      version: VERSION,
    });
    this.#http = new HttpServer({
      router: hiveRoutes(this),
      log,
      metrics: this.metrics,
      quietRoutes: ["/health", "/metrics", "/v1/worker-heartbeat"],
      tls,
    });
    const localHost = loopbackFor(o.host);
    this.#queen = new QueenHeartbeat({
      queenUrl: o.queenUrl,
      token,
      intervalMs: o.heartbeatIntervalMs,
      payload: () => this.info(),
      onCommand: (command) => this.#onQueenCommand(command),
      log,
      metrics: this.metrics,
    });
    this.#supervisor = new WorkerSupervisor({
      log,
      metrics: this.metrics,
      token,
      ports: new PortAllocator(o.workerPortStart, o.host),
      restartPolicy: new RestartPolicy(o.restart),
      logsDir: paths.logs,
      node: process.execPath,
      rbeeBin: o.rbeeBin,
      launch: async (spec, ctx) => {
        const device = this.devices.find(spec.device);
        const kind = device.kind;
        const { descriptor, engines } = await this.workerCatalog.resolve(spec.workerType, device);
        return descriptor.launch(
          {
            workerId: spec.workerId,
            modelId: spec.modelId,
            modelPath: spec.modelPath,
            device: spec.device,
            deviceKind: kind,
            ctxSize: spec.ctxSize,
            parallel: spec.parallel,
            threads: spec.threads,
            maxQueue: spec.maxQueue,
            engines,
            group: spec.group,
            config: spec.config,
          },
          ctx,
        );
      },
      env: workerEnv(o),
      workerHost: o.host,
      localHost,
      scheme: tls ? "https" : "http",
      heartbeatUrl: () => this.#url,
      workerUrl: (port) => {
        const url = new URL(this.#advertiseUrl);
        url.port = String(port);
        return url.origin;
      },
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      orphanTimeoutMs: o.workerOrphanTimeoutMs,
      workerShutdownGraceMs: o.workerShutdownGraceMs,
      stopGraceMs: o.stopGraceMs,
      readyTimeoutMs: o.readyTimeoutMs,
      spareWorker: o.spareWorker,
      firstSpare: o.firstSpare,
      strictStates: o.strictStates,
      records: new WorkerRecords(join(paths.run, "workers"), log, paths.workers),
      onChange: (urgent) => this.#queen.beatSoon(urgent ? DEBOUNCE_MS : LOAD_DEBOUNCE_MS),
      onStartFailed: (spec) => void this.#recheckModel(spec.modelId),
    });
  }

  /** The hive's URL on this machine (what its workers heartbeat to), e.g. http://127.0.0.1:7835. */
  get url(): string {
    return this.#url;
  }

  /** The URL the queen is told to use. */
  get advertiseUrl(): string {
    return this.#advertiseUrl;
  }

  get port(): number {
    return this.#port;
  }

  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /** Heartbeats the queen acknowledged so far. */
  get heartbeatsDelivered(): number {
    return this.#queen.delivered;
  }

  /** What the hive tells the queen: devices, workers and models. */
  async info(): Promise<HiveHeartbeat> {
    return {
      protocol_version: PROTOCOL_VERSION,
      hive_id: this.id,
      url: this.#advertiseUrl,
      version: this.version,
      started_at: this.startedAt.toISOString(),
      interval_ms: this.options.heartbeatIntervalMs,
      devices: this.devices.current(),
      workers: this.workers(),
      models: await this.models(),
      worker_types: await this.workerCatalog.current(),
    };
  }

  workers(): HiveWorkerReport[] {
    return this.#supervisor.reports();
  }

  /** The pid of the spare llm worker process waiting for a model (RBEE_SPARE_WORKER), if one waits. */
  sparePid(): number | undefined {
    return this.#supervisor.sparePid();
  }

  async models(): Promise<HiveModel[]> {
    return (await this.catalog.list()).map(toHiveModel);
  }

  /**
   * Finds or fetches a model: a catalog id, a local GGUF path (registered in place), a file in the
   * Hugging Face cache (used in place), or a Hugging Face reference (downloaded, resumably).
   * `listener` hears narration and download progress; `signal` stops a download (its part stays).
   * `peers` are other hives that hold the model: tried first, over the LAN, when this one lacks it.
   */
  async resolveModel(
    ref: string,
    listener?: ProvisionListener,
    signal?: AbortSignal,
    peers?: readonly ModelPeer[],
    anyPath = false,
    format?: ModelFormat,
  ): Promise<HiveModel> {
    this.#queen.beatSoon();
    try {
      return await this.provisioner.provision(ref, listener, signal, peers, anyPath, format);
    } finally {
      this.#queen.beatSoon();
    }
  }

  /** What a model is and needs, from its GGUF header only (fetched by Range for a remote model). */
  inspectModel(ref: string, ctxSize?: number, parallel?: number, anyPath = false): Promise<ModelInspection> {
    return this.provisioner.inspect(ref, ctxSize, parallel, anyPath);
  }

  /**
   * Installs a worker package version (see WorkerPackages.install), then lists it in the worker
   * catalog and tells the queen at once.
   */
  async installPackage(
    request: InstallWorkerPackageRequest,
    cb: InstallCallbacks = {},
    signal?: AbortSignal,
  ): Promise<InstallOutcome & { worker_types: InstalledWorkerType[] }> {
    const outcome = await this.packages.install(request, cb, signal);
    return { ...outcome, worker_types: await this.#packagesChanged() };
  }

  /** Goes back to a package's previous version (after an update that failed its readiness check). */
  async rollbackPackage(id: string): Promise<InstallOutcome & { worker_types: InstalledWorkerType[] }> {
    const outcome = await this.packages.rollback(id);
    return { ...outcome, worker_types: await this.#packagesChanged() };
  }

  /** Removes an installed package; refused while workers of its type run. */
  async uninstallPackage(id: string): Promise<{ id: string; version: string; worker_types: InstalledWorkerType[] }> {
    const inUse = this.workers()
      .filter((w) => w.worker_type === id && w.status !== "Stopped")
      .map((w) => w.worker_id);
    const removed = await this.packages.uninstall(id, inUse);
    return { ...removed, worker_types: await this.#packagesChanged() };
  }

  async #packagesChanged(): Promise<InstalledWorkerType[]> {
    const types = await this.workerCatalog.refresh();
    this.#queen.beatSoon();
    return types;
  }

  /**
   * Removes a model from the catalog: its entry and the files the catalog holds (a file used in
   * place stays). Refused while a worker serves it.
   */
  async removeModel(id: string): Promise<HiveModel> {
    const serving = this.workers().filter((w) => w.model === id.toLowerCase() && w.status !== "Stopped");
    if (serving.length > 0) {
      throw new RbeeError(
        `model ${id} is in use by worker ${serving.map((w) => w.worker_id).join(", ")}; stop it first (rbee worker stop)`,
        { statusCode: 409, code: "model_in_use" },
      );
    }
    const entry = await this.catalog.remove(id.toLowerCase());
    this.#queen.beatSoon();
    return toHiveModel(entry);
  }

  /**
   * Spawns a worker and resolves its report once it is ready; `signal` aborting (the client went
   * away) stops it. See WorkerSupervisor.spawn for the errors; also DeviceNotFoundError (400),
   * ModelNotFoundError (404) and ModelNotAvailableError (409).
   */
  async spawnWorker(request: SpawnWorkerInput, signal?: AbortSignal): Promise<HiveWorkerReport> {
    if (this.closing) throw new ShuttingDownError("this hive");
    const cores = availableParallelism();
    if (request.threads !== undefined && request.threads > cores)
      throw new ValidationError(
        `threads: ${request.threads} is more than the ${cores} cores of this machine; use at most ${cores}`,
        "threads",
      );
    const device = this.devices.find(request.device);
    const { descriptor } = await this.workerCatalog.resolve(request.worker_type, device);
    // checked before anything is provisioned: a bad configuration is the user's to fix (400)
    const config = workerConfigFor(descriptor.id, descriptor.configSchema, request.config);
    let model: { id: string; path?: string };
    if (descriptor.artifact === "none") {
      // a type that loads nothing serves the model name it is given (an Ollama name may carry a
      // tag and a namespace: `llama3.2:1b`, `hf.co/owner/repo:Q4_K_M`); it names no file here
      const id = request.model.toLowerCase();
      if (!SERVED_MODEL_NAME.test(id) || id.includes(".."))
        throw new ValidationError(
          `model '${request.model}' is not a name a ${descriptor.id} worker can serve: use letters, digits, '.', '_', '-', ':' and '/' (at most 128)`,
          "model",
        );
      model = { id };
    } else {
      const repo = descriptor.artifact === "hf-repo";
      const provisioned = await this.provisioner.provision(
        request.model,
        {},
        signal,
        [],
        request.any_path === true,
        repo ? "hf-repo" : undefined,
      );
      const entry = await this.catalog.resolve(provisioned.id);
      if (entry.artifact.status !== "Available" || entry.path === undefined) {
        throw new ModelNotAvailableError(entry.id, entry.artifact.status, entry.artifact.error);
      }
      if (!repo && entry.artifact.format === "hf-repo")
        throw new ValidationError(
          `model ${entry.id} is a Hugging Face repo (safetensors), which worker type '${descriptor.id}' cannot load; spawn it with --type vllm or --type trtllm`,
          "model",
        );
      // a repo's entry names its config.json: the worker gets the repo's directory
      model = { id: entry.id, path: repo ? dirname(entry.path) : entry.path };
    }
    const workerId = request.worker_id ?? this.#newWorkerId(request.worker_type, model.id);
    const group = request.group === undefined ? undefined : await groupMember(request.group, descriptor.id);
    const readyTimeoutMs = request.ready_timeout_ms ?? descriptor.readyTimeoutMs ?? this.options.readyTimeoutMs;
    return this.#supervisor.spawn(
      {
        workerId,
        workerType: request.worker_type,
        modelId: model.id,
        modelPath: model.path,
        device: device.id,
        ctxSize: request.ctx_size,
        parallel: request.parallel,
        threads: request.threads,
        maxQueue: request.max_queue,
        keepAliveMs: request.keep_alive_ms,
        memoryBytes: request.memory_bytes,
        readyTimeoutMs,
        group,
        config,
      },
      { readyTimeoutMs, signal },
    );
  }

  /** Stops a worker and resolves its last report (status Stopped). */
  stopWorker(id: string): Promise<HiveWorkerReport> {
    return this.#supervisor.stop(id);
  }

  receiveWorkerHeartbeat(hb: WorkerHeartbeat): HeartbeatCommand[] {
    return this.#supervisor.receiveHeartbeat(hb);
  }

  /** The last `tail` lines of a worker's log (also of a worker that is gone, while its log is there). */
  async workerLogs(id: string, tail: number): Promise<string[]> {
    const path = workerLogPath(this.#logsDir, id);
    if (!this.#supervisor.has(id) && !existsSync(path)) throw new WorkerNotFoundError(id);
    return readLastLines(path, tail);
  }

  async renderMetrics(): Promise<{ contentType: string; body: string }> {
    this.metrics.countWorkers(this.workers());
    return this.metrics.render();
  }

  /** Stops accepting, stops every worker (SIGTERM, then SIGKILL after the grace), then the server. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.log.info({ workers: this.workers().length }, "hive stopping");
    const httpClosed = this.#http.close();
    await this.#supervisor.stopAll("the hive is shutting down");
    this.#supervisor.dispose();
    await this.#queen.stop();
    await this.#queen.sendFinal();
    this.#http.server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([httpClosed, new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    this.#http.destroyConnections();
    await this.devices.settled();
    this.log.info("hive stopped");
  }

  async #listen(): Promise<void> {
    const o = this.options;
    try {
      const bound = await this.#http.listen(o.port, o.host);
      this.#port = bound.port;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EADDRINUSE") {
        throw new Error(
          `port ${o.port} on ${o.host} is in use (is a hive already running?); stop it or choose another port (RBEE_HIVE_PORT)`,
        );
      }
      throw err;
    }
    const scheme = this.tls ? "https" : "http";
    this.#url = `${scheme}://${bracket(loopbackFor(o.host))}:${this.#port}`;
    this.#advertiseUrl = o.advertiseUrl ?? `${scheme}://${bracket(advertisedHost(o.host))}:${this.#port}`;
    this.#supervisor.recover();
    this.#supervisor.start();
    await this.packages.load();
    await this.workerCatalog.refresh();
    this.#queen.start();
    if (this.tls) {
      this.log.info({ cert: this.tls.certFile, names: this.tls.names, valid_to: this.tls.validTo }, "serving HTTPS");
      if (keyFileIsShared(this.tls.keyFile))
        this.log.warn({ key: this.tls.keyFile }, "the TLS private key is readable by other users; chmod 600 it");
    }
    this.log.info(
      {
        url: this.#url,
        advertise_url: this.#advertiseUrl,
        queen_url: o.queenUrl,
        devices: this.devices.current().map((d) => d.id),
        cache_dir: o.cacheDir,
      },
      "hive ready",
    );
  }

  /**
   * A worker could not load its model: look at the model's files again (the catalog compares them
   * with what it recorded), so that a file truncated or replaced since it was added is reported
   * Failed to the queen now, which then places no worker for it.
   */
  async #recheckModel(modelId: string): Promise<void> {
    const entry = await this.catalog.get(modelId).catch(() => undefined);
    if (entry?.artifact.status === "Failed")
      this.log.warn(
        { model: modelId, error: entry.artifact.error },
        "a worker failed to load a model whose file changed",
      );
    this.#queen.beatSoon();
  }

  /** A command from the queen, in the reply to a heartbeat. */
  #onQueenCommand(command: HiveCommand): void {
    switch (command.type) {
      case "set_keep_alive":
        this.#supervisor.setKeepAlive(command.worker_id, command.keep_alive_ms);
        return;
    }
  }

  #newWorkerId(workerType: string, modelId: string): string {
    // worker ids name files (logs, records): a model name's ':' and '/' become '-'
    const short = modelId
      .replace(/[^a-z0-9._-]+/g, "-")
      .slice(0, 40)
      .replace(/[._-]+$/, "");
    for (;;) {
      const id = `${workerType}-${short}-${randomBytes(2).toString("hex")}`;
      if (!this.#supervisor.has(id)) return id;
    }
  }
}

/** A model name a type that loads no artifact serves: the worker contract's --model-id, lower case. */
const SERVED_MODEL_NAME = /^[a-z0-9][a-z0-9._:/-]{0,127}$/;

/** Starts a hive in this process (tests, embedding); see {@link Hive.start}. */
export function startHive(options: HiveOptions = {}): Promise<Hive> {
  return Hive.start(options);
}

/**
 * The environment of the workers: this process's, plus the hive's certificate (they serve HTTPS
 * with it, so that queen→worker traffic is encrypted too) and the extra CA the hive was given (they
 * heartbeat to the hive over HTTPS).
 */
function workerEnv(o: ResolvedHiveOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...tlsEnv(o.tls) };
  if (o.tls === undefined) {
    delete env[TLS_CERT_ENV];
    delete env[TLS_KEY_ENV];
  }
  const ca = o.env[TLS_CA_ENV] ?? process.env[TLS_CA_ENV];
  if (ca) env[TLS_CA_ENV] = ca;
  // a declared (simulated) inventory goes to the workers too: they run on the CPU for a simulated GPU
  if (o.env.RBEE_DEVICES !== undefined) env.RBEE_DEVICES = o.env.RBEE_DEVICES;
  return env;
}

function isUnspecified(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "";
}

/** The address this machine reaches a server bound to `host` at. */
function loopbackFor(host: string): string {
  if (host === "::") return "::1";
  return isUnspecified(host) ? "127.0.0.1" : host;
}

/** The host others are told: the bound address, or for "all interfaces" the first LAN IPv4 address. */
function advertisedHost(host: string): string {
  if (!isUnspecified(host)) return host;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return "127.0.0.1";
}

function bracket(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * The engine binaries this machine has, for the worker catalog: those rbee built and those it was
 * given (RBEE_ENGINES_DIR, else <cache>/engines), and those on PATH. Versions are probed once per
 * binary (and again when the file changes).
 */
function defaultFindEngines(o: ResolvedHiveOptions): () => Promise<EngineBinary[]> {
  const cache = new VersionProbeCache();
  const dir = o.env.RBEE_ENGINES_DIR || join(o.cacheDir, "engines");
  return async () => {
    const found = await listEngines({ env: o.env, enginesDir: dir, cache });
    return found.map(({ version, ...rest }) => (version === null ? rest : { ...rest, version }));
  };
}
