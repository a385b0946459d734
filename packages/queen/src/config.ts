import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_PORTS, PlacementPolicy } from "@rbee/contract";
import { cacheDir, configDir, envInt, envString, type Logger, type TlsFiles, tlsFilesFrom } from "@rbee/server-kit";
import { DEFAULT_IMAGE_WORKER_TYPE, DEFAULT_WORKER_TYPE, findWorkerType, workerTypeIds } from "@rbee/worker-types";
import { DEFAULT_JOBS_MAX_BYTES } from "./jobs/job-store.js";

export interface QueenOptions {
  /** Default 7833 (RBEE_QUEEN_PORT); 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (RBEE_QUEEN_HOST). A non-loopback address needs API keys. */
  host?: string;
  configDir?: string;
  cacheDir?: string;
  /** The heartbeat interval hives and workers use; stale after 3, lost after 6 (RBEE_HEARTBEAT_INTERVAL_MS). */
  heartbeatIntervalMs?: number;
  /**
   * How long a worker may take to send the first byte of its answer (rbee workers send
   * `102 Processing` as soon as they take a request) before the request goes to another worker:
   * default 10 s (RBEE_FIRST_BYTE_TIMEOUT_MS).
   */
  firstByteTimeoutMs?: number;
  /**
   * What finished jobs may hold in memory together (their events: tokens, results), in bytes; the
   * oldest finished jobs are forgotten first. Default 64 MiB (RBEE_JOBS_MAX_BYTES).
   */
  jobsMaxBytes?: number;
  /** Keep-alive of workers the queen spawns for requests; default 5 minutes (RBEE_KEEP_ALIVE, seconds). */
  defaultKeepAliveMs?: number;
  /** Requests that may wait for a worker of one model to come up; more are answered 429. */
  maxWaitingPerModel?: number;
  /** How often idle workers are looked for. */
  sweepIntervalMs?: number;
  /** Where new workers go when a spawn names no policy: spread (default) or pack (RBEE_PLACEMENT). */
  placement?: PlacementPolicy;
  /**
   * The worker type a model gets when neither the request nor the model's minimum names one:
   * default "llm" (RBEE_WORKER_TYPE).
   */
  defaultWorkerType?: string;
  /** The worker type an image request starts when nothing names one: default "comfyui" (RBEE_IMAGE_WORKER_TYPE). */
  defaultImageWorkerType?: string;
  /**
   * Also serve the Ollama API alone on this port (Ollama's own is 11434), for clients that cannot be
   * given a base URL; default: not (RBEE_OLLAMA_PORT). The queen's port serves it at /api/* anyway.
   */
  ollamaPort?: number;
  /**
   * Worker catalog servers that installs look in when a request names none, in order. Default env
   * RBEE_CATALOG_URLS (space or comma separated), else http://127.0.0.1:8787.
   */
  catalogUrls?: string[];
  /**
   * How often packages installed with auto-update are checked for a newer version within their
   * major (ms); 0 never. Default env RBEE_PACKAGE_UPDATE_INTERVAL_MS, else one hour.
   */
  packageUpdateIntervalMs?: number;
  /** Serve HTTPS with this certificate (PEM); needs tlsKey. Default env RBEE_TLS_CERT. */
  tlsCert?: string;
  /** The certificate's private key (PEM, unencrypted). Default env RBEE_TLS_KEY. */
  tlsKey?: string;
  log?: Logger;
}

export interface QueenConfig {
  port: number;
  host: string;
  configDir: string;
  cacheDir: string;
  heartbeatIntervalMs: number;
  firstByteTimeoutMs: number;
  jobsMaxBytes: number;
  defaultKeepAliveMs: number;
  maxWaitingPerModel: number;
  sweepIntervalMs: number;
  placement: PlacementPolicy;
  defaultWorkerType: string;
  defaultImageWorkerType: string;
  /** A second port that serves the Ollama API alone; undefined: none. */
  ollamaPort: number | undefined;
  /** HTTPS when set. */
  tls: TlsFiles | undefined;
  catalogUrls: string[];
  packageUpdateIntervalMs: number;
}

/** Flags win over the environment, the environment over the defaults written here. */
export function resolveQueenConfig(o: QueenOptions = {}, env: NodeJS.ProcessEnv = process.env): QueenConfig {
  return {
    port: o.port ?? envInt("RBEE_QUEEN_PORT", DEFAULT_PORTS.queen, 0),
    host: o.host ?? envString("RBEE_QUEEN_HOST", "127.0.0.1"),
    configDir: o.configDir ?? configDir(env),
    cacheDir: o.cacheDir ?? cacheDir(env),
    heartbeatIntervalMs:
      o.heartbeatIntervalMs ?? envInt("RBEE_HEARTBEAT_INTERVAL_MS", DEFAULT_HEARTBEAT_INTERVAL_MS, 10),
    firstByteTimeoutMs: o.firstByteTimeoutMs ?? envInt("RBEE_FIRST_BYTE_TIMEOUT_MS", 10_000, 1),
    jobsMaxBytes: o.jobsMaxBytes ?? envInt("RBEE_JOBS_MAX_BYTES", DEFAULT_JOBS_MAX_BYTES, 0),
    defaultKeepAliveMs: o.defaultKeepAliveMs ?? envInt("RBEE_KEEP_ALIVE", 300, 0) * 1000,
    maxWaitingPerModel: o.maxWaitingPerModel ?? envInt("RBEE_MAX_WAITING", 128, 0),
    sweepIntervalMs: o.sweepIntervalMs ?? 1000,
    placement: o.placement ?? placementFromEnv(env),
    defaultWorkerType: checkWorkerType(o.defaultWorkerType ?? envString("RBEE_WORKER_TYPE", DEFAULT_WORKER_TYPE)),
    defaultImageWorkerType: checkWorkerType(
      o.defaultImageWorkerType ?? envString("RBEE_IMAGE_WORKER_TYPE", DEFAULT_IMAGE_WORKER_TYPE),
      "RBEE_IMAGE_WORKER_TYPE",
    ),
    ollamaPort: o.ollamaPort ?? optionalPort(envInt("RBEE_OLLAMA_PORT", -1, 0)),
    catalogUrls: o.catalogUrls ?? catalogList(env.RBEE_CATALOG_URLS),
    packageUpdateIntervalMs: o.packageUpdateIntervalMs ?? envInt("RBEE_PACKAGE_UPDATE_INTERVAL_MS", 3_600_000, 0),
    tls: tlsFilesFrom(o, env),
  };
}

function optionalPort(port: number): number | undefined {
  return port < 0 ? undefined : port;
}

function checkWorkerType(id: string, variable = "RBEE_WORKER_TYPE"): string {
  if (findWorkerType(id) === undefined) {
    throw new Error(`the default worker type '${id}' (${variable}) is not one of ${workerTypeIds().join(", ")}`);
  }
  return id;
}

function placementFromEnv(env: NodeJS.ProcessEnv): PlacementPolicy {
  const text = env.RBEE_PLACEMENT;
  if (text === undefined || text === "") return "spread";
  const parsed = PlacementPolicy.safeParse(text);
  if (!parsed.success) {
    throw new Error(`RBEE_PLACEMENT=${JSON.stringify(text)} must be one of ${PlacementPolicy.options.join(", ")}`);
  }
  return parsed.data;
}

/** The default worker catalog server (rbee catalog serve). */
export const DEFAULT_CATALOG_URL = `http://127.0.0.1:${DEFAULT_PORTS.catalogServer}`;

/** RBEE_CATALOG_URLS: catalog server URLs, space or comma separated; each must be http(s). */
function catalogList(text: string | undefined): string[] {
  const urls = (text ?? "").split(/[\s,]+/).filter(Boolean);
  for (const u of urls) {
    if (!/^https?:\/\/[^\s/]+/.test(u)) throw new Error(`RBEE_CATALOG_URLS: '${u}' is not an http(s) URL`);
  }
  return urls.length > 0 ? urls.map((u) => u.replace(/\/+$/, "")) : [DEFAULT_CATALOG_URL];
}
