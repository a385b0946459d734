import type {
  ApiKeyInfo,
  CatalogListing,
  ClusterEvent,
  ClusterSnapshot,
  ClusterWorker,
  ClusterWorkerTypes,
  JobCreated,
  JobOperation,
  ParseResult,
  SseMessage,
} from "@rbee/contract";
import { parseJson, RbeeError, readJobCreated, ValidationError } from "@rbee/contract/light";
import {
  type ClientRequestOptions,
  HttpStatusError,
  readBody,
  readClusterToken,
  requestJson,
  requestJsonWith,
  sendRequest,
  streamSse,
  toStatusError,
  UnreachableError,
} from "@rbee/server-kit/client";
import { type CliConfig, DEFAULT_CLIENT_TIMEOUT_MS, isLoopbackUrl } from "./config.js";
import { CliError, EXIT, exitCodeForError } from "./exit-codes.js";

export interface QueenHealth {
  status: string;
  version: string | undefined;
}

export interface CreatedKey extends ApiKeyInfo {
  key: string;
}

const WHAT = "the queen";

/**
 * The contract's schemas (and zod), imported by the first call that validates with them: running a
 * job (`rbee infer`) reads its few answers by hand and loads neither.
 */
const schemas = () => import("@rbee/contract");

function readCreated(value: unknown, what: string): ParseResult<JobCreated> {
  const created = readJobCreated(value);
  if (created) return { ok: true, value: created };
  return { ok: false, error: new ValidationError(`invalid ${what}: expected {"job_id", "sse_url"} strings`) };
}

/** The queen is there (it took the connection) but does not answer: frozen, stopped (SIGSTOP) or overloaded. */
export class QueenNotAnsweringError extends CliError {
  constructor(message: string) {
    super(message, EXIT.unavailable);
    this.name = "QueenNotAnsweringError";
  }
}

type ClientConfig = Pick<CliConfig, "queenUrl" | "queenUrlSource" | "apiKey" | "configDir"> &
  Partial<Pick<CliConfig, "timeoutMs">>;

/** The hint after "cannot reach the queen": how to start it, or where the URL came from. */
function unreachableHint(config: Pick<CliConfig, "queenUrl" | "queenUrlSource">): string {
  if (isLoopbackUrl(config.queenUrl)) return "is it running? start it with `rbee up`";
  const from = { flag: "--queen-url", env: "RBEE_QUEEN_URL", config: "queen_url in config.json", default: "" }[
    config.queenUrlSource
  ];
  return `is it running, and is the address right? it comes from ${from}`;
}

/**
 * The queen's HTTP API as the CLI uses it. Every failure becomes a CliError with one line and
 * its exit code: 3 when the queen cannot be reached, 4 when the thing named does not exist.
 */
export class QueenClient {
  readonly url: string;
  readonly #config: ClientConfig;
  readonly #timeoutMs: number;

  constructor(config: ClientConfig) {
    this.url = config.queenUrl;
    this.#config = config;
    this.#timeoutMs = config.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
  }

  /**
   * The bearer token for the OpenAI, job and cluster routes: the API key when one was given, else,
   * for a queen on this machine, the cluster token (so that the local CLI keeps working once API
   * keys exist). It is never sent to another machine unasked.
   */
  get #token(): string | undefined {
    if (this.#config.apiKey) return this.#config.apiKey;
    return isLoopbackUrl(this.url) ? readClusterToken(this.#config.configDir) : undefined;
  }

  /** The cluster token, which the admin routes (/v1/keys) want. */
  get #adminToken(): string {
    const token = readClusterToken(this.#config.configDir);
    if (!token) {
      throw new CliError(
        `no cluster token in ${this.#config.configDir}/cluster-token (or RBEE_CLUSTER_TOKEN): managing API keys needs the cluster token of the queen's machine; run this on that machine, or set RBEE_CLUSTER_TOKEN`,
      );
    }
    return token;
  }

  /** Turns what the HTTP client threw into a CliError with one line and the right exit code. */
  translate(err: unknown, admin = false): unknown {
    if (err instanceof CliError) return err;
    if (err instanceof UnreachableError) {
      const prefix = `cannot reach ${WHAT} at ${err.url}: `;
      const reason = (err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message).replace(
        / \(is it running\?\)$/,
        "",
      );
      if (err.timedOut) {
        return new QueenNotAnsweringError(
          `${WHAT} at ${this.url} does not answer: ${reason}; it took the connection, so it runs but is stuck (stopped with SIGSTOP, or overloaded): look at its log, or restart it with \`rbee queen stop\` and \`rbee queen start\``,
        );
      }
      return new CliError(
        `cannot reach ${WHAT} at ${this.url}: ${reason} (${unreachableHint(this.#config)})`,
        EXIT.unavailable,
      );
    }
    if (err instanceof HttpStatusError && err.status === 401 && !admin && !this.#config.apiKey) {
      return new CliError(
        `the queen at ${this.url} requires an API key: give it with --api-key or RBEE_API_KEY (create one with \`rbee key create\`)`,
      );
    }
    if (err instanceof HttpStatusError) return new CliError(err.message, exitCodeForError(err.code, err.status));
    if (err instanceof RbeeError) return new CliError(err.message, exitCodeForError(err.code, err.statusCode));
    return err;
  }

  async #call<T>(fn: () => Promise<T>, admin = false): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.translate(err, admin);
    }
  }

  /** Every call has a connect-and-first-byte timeout, and streams an idle timeout (the queen sends keep-alives). */
  #options(o: ClientRequestOptions = {}): ClientRequestOptions {
    return { what: WHAT, token: this.#token, timeoutMs: this.#timeoutMs, idleTimeoutMs: this.#streamIdleMs, ...o };
  }

  /** Streams carry a keep-alive comment every 15 s: three missed ones mean the queen stopped. */
  get #streamIdleMs(): number {
    return Math.max(this.#timeoutMs, 45_000);
  }

  /** GET/POST/DELETE a path and return the reply's JSON (undefined for an empty body). */
  async #json(path: string, o: ClientRequestOptions = {}): Promise<unknown> {
    return this.#call(async () => {
      const url = `${this.url}${path}`;
      const res = await sendRequest(url, this.#options(o));
      if ((res.statusCode ?? 500) >= 400) throw await toStatusError(res, url, WHAT);
      const text = await readBody(res);
      if (text.trim() === "") return undefined;
      const parsed = parseJson(text);
      if (!parsed.ok) throw new CliError(`${WHAT} sent a reply that is not JSON (${url})`);
      return parsed.value;
    }, o.token !== undefined);
  }

  #check<T>(result: ParseResult<T>): T {
    if (!result.ok) throw new CliError(`${result.error.message} (is ${this.url} an rbee queen of this version?)`);
    return result.value;
  }

  async health(timeoutMs = 3000): Promise<QueenHealth> {
    const body = await this.#json("/health", { timeoutMs });
    const b = (body ?? {}) as { status?: unknown; version?: unknown };
    if (typeof b.status !== "string") throw new CliError(`${this.url}/health did not answer like an rbee queen`);
    return { status: b.status, version: typeof b.version === "string" ? b.version : undefined };
  }

  /** True when the queen answers /health; false when it cannot be reached (other errors throw). */
  async isUp(timeoutMs = 3000): Promise<boolean> {
    return (await ifReachable(this.health(timeoutMs))) !== undefined;
  }

  /**
   * How many hives the queen knows, or undefined when it cannot be reached (other errors throw): one
   * request where `isUp` and `hiveCount` would make two.
   */
  hiveCountIfUp(timeoutMs = 3000): Promise<number | undefined> {
    return ifReachable(this.hiveCount(timeoutMs));
  }

  async cluster(): Promise<ClusterSnapshot> {
    const { ClusterSnapshot } = await schemas();
    return this.#call(() => requestJson(`${this.url}/v1/cluster`, ClusterSnapshot, this.#options()));
  }

  /** How many hives the queen knows (live or not), read by hand from `GET /v1/cluster`. */
  async hiveCount(timeoutMs?: number): Promise<number> {
    return (await this.hives(timeoutMs)).length;
  }

  /**
   * The hives the queen knows, live or not: id, state and URL, read by hand from `GET /v1/cluster`
   * (no schemas to load: `rbee infer` from nothing waits on this while the daemons start).
   */
  async hives(timeoutMs?: number): Promise<Array<{ id: string; state: string; url: string }>> {
    const body = (await this.#json("/v1/cluster", timeoutMs === undefined ? {} : { timeoutMs })) as
      | { hives?: unknown }
      | undefined;
    if (!Array.isArray(body?.hives)) throw new CliError(`GET ${this.url}/v1/cluster did not answer a hive list`);
    return body.hives.map((h: unknown) => {
      const { id, state, url } = (h ?? {}) as Record<string, unknown>;
      if (typeof id !== "string" || typeof state !== "string" || typeof url !== "string") {
        throw new CliError(`GET ${this.url}/v1/cluster answered a hive without an id, a state or a URL`);
      }
      return { id, state, url };
    });
  }

  /** Every hive's catalog entries, Downloading and Failed ones too. */
  async catalog(): Promise<CatalogListing["models"]> {
    const { CatalogListing, safeParse } = await schemas();
    return this.#check(safeParse(CatalogListing, await this.#json("/v1/catalog"), "catalog")).models;
  }

  /** The worker types, and per hive whether they can run there. */
  async workerTypes(): Promise<ClusterWorkerTypes> {
    const { ClusterWorkerTypes, safeParse } = await schemas();
    return this.#check(safeParse(ClusterWorkerTypes, await this.#json("/v1/worker-types"), "worker types"));
  }

  async workers(): Promise<ClusterWorker[]> {
    const { ClusterWorker, safeParse } = await schemas();
    const body = (await this.#json("/v1/workers")) as { workers?: unknown } | undefined;
    if (!Array.isArray(body?.workers)) throw new CliError(`GET ${this.url}/v1/workers did not answer a worker list`);
    return body.workers.map((w) => this.#check(safeParse(ClusterWorker, w, `worker from ${WHAT}`)));
  }

  async createJob(operation: JobOperation): Promise<JobCreated> {
    return this.#call(() =>
      requestJsonWith(`${this.url}/v1/jobs`, readCreated, this.#options({ method: "POST", body: { operation } })),
    );
  }

  async cancelJob(jobId: string): Promise<void> {
    await this.#json(`/v1/jobs/${encodeURIComponent(jobId)}`, { method: "DELETE", timeoutMs: 5000 });
  }

  /** A job's raw SSE stream, resuming after `afterSeq` (Last-Event-ID) when given. */
  async *jobStream(created: JobCreated, afterSeq: number, signal: AbortSignal): AsyncGenerator<SseMessage> {
    const url = new URL(created.sse_url, `${this.url}/`).toString();
    const headers: Record<string, string> = afterSeq >= 0 ? { "last-event-id": String(afterSeq) } : {};
    try {
      yield* streamSse(url, this.#options({ headers, signal }));
    } catch (err) {
      throw this.translate(err);
    }
  }

  /** `GET /v1/events`: the snapshot first, then one event per change; ends when `signal` aborts. */
  async *events(signal: AbortSignal): AsyncGenerator<ClusterEvent> {
    const { ClusterEvent, safeParse } = await schemas();
    try {
      for await (const msg of streamSse(`${this.url}/v1/events`, this.#options({ signal }))) {
        const parsed = parseJson(msg.data);
        if (!parsed.ok) continue;
        const event = safeParse(ClusterEvent, parsed.value, "cluster event");
        if (event.ok) yield event.value; // events of a newer queen are skipped, not fatal
      }
    } catch (err) {
      throw this.translate(err);
    }
  }

  async listKeys(): Promise<ApiKeyInfo[]> {
    const { ApiKeyInfo, safeParse } = await schemas();
    const body = (await this.#json("/v1/keys", { token: this.#adminToken })) as { keys?: unknown } | undefined;
    if (!Array.isArray(body?.keys)) throw new CliError(`GET ${this.url}/v1/keys did not answer a key list`);
    return body.keys.map((k) => this.#check(safeParse(ApiKeyInfo, k, `API key from ${WHAT}`)));
  }

  async createKey(name: string, admin = false): Promise<CreatedKey> {
    const { ApiKeyInfo, safeParse } = await schemas();
    const body = await this.#json("/v1/keys", {
      method: "POST",
      body: admin ? { name, admin } : { name },
      token: this.#adminToken,
    });
    const info = this.#check(safeParse(ApiKeyInfo, body, `new API key from ${WHAT}`));
    const key = (body as { key?: unknown }).key;
    if (typeof key !== "string") throw new CliError(`POST ${this.url}/v1/keys did not answer the new key`);
    return { ...info, key };
  }

  async removeKey(id: string): Promise<void> {
    await this.#json(`/v1/keys/${encodeURIComponent(id)}`, { method: "DELETE", token: this.#adminToken });
  }
}

/** What `call` resolves, or undefined when the queen cannot be reached; other errors throw. */
async function ifReachable<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    // a queen that took the connection but does not answer is up: starting another would fail
    if (err instanceof QueenNotAnsweringError) throw err;
    if (err instanceof CliError && err.exitCode === EXIT.unavailable) return undefined;
    throw err;
  }
}
