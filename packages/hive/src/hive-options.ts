import { hostname } from "node:os";
import { delimiter, isAbsolute } from "node:path";
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_PORTS, type EngineBinary, SafeId } from "@rbee/contract";
import {
  cacheDir as defaultCacheDir,
  configDir as defaultConfigDir,
  type Logger,
  type TlsFiles,
  tlsFilesFrom,
} from "@rbee/server-kit";
import { defaultRbeeBin } from "./default-rbee-bin.js";
import { DEFAULT_RESTART_POLICY, type RestartPolicyOptions } from "./restart-policy.js";
import type { StartedSpare } from "./spare-worker.js";

/**
 * How a hive runs. Every option has a default; most have an environment variable too (read from
 * `env`, by default process.env). Options given here win over the environment.
 */
export interface HiveOptions {
  /** Port to listen on; 0 picks a free one. Default 7835, env RBEE_HIVE_PORT. */
  port?: number;
  /** Address to listen on. Default 127.0.0.1, env RBEE_HIVE_HOST. Workers listen on the same address. */
  host?: string;
  /** The queen heartbeats go to. Default env RBEE_QUEEN_URL, else http://127.0.0.1:7833. */
  queenUrl?: string;
  /** This hive's id. Default env RBEE_HIVE_ID, else the host name in SafeId form. */
  hiveId?: string;
  /**
   * The URL the queen should use for this hive (and whose host name goes into worker URLs).
   * Default http://<host>:<port> (https:// with TLS); for 0.0.0.0 or :: the machine's first LAN
   * address. Its scheme must match: https:// exactly when the hive serves TLS.
   */
  advertiseUrl?: string;
  /**
   * Serve HTTPS with this certificate (PEM), and so do the workers this hive spawns; needs tlsKey.
   * Default env RBEE_TLS_CERT.
   */
  tlsCert?: string;
  /** The certificate's private key (PEM, unencrypted). Default env RBEE_TLS_KEY. */
  tlsKey?: string;
  /** Default RBEE_CACHE_DIR, else ~/.cache/rbee (models, logs). */
  cacheDir?: string;
  /** Default RBEE_CONFIG_DIR, else ~/.config/rbee (the cluster token). */
  configDir?: string;
  /**
   * Directories a request may name model files in (`"model": "/models/x.gguf"`), besides the model
   * cache, the Hugging Face cache, and (unless `defaultModelDirs` is false) the user's home and the
   * working directory outside hidden directories. Default env RBEE_MODELS_DIRS (':'-separated),
   * `rbee hive start --models-dir`. See model-paths.ts.
   */
  modelsDirs?: string[];
  /** Whether the user's home and the working directory are allowed too. Default true (env RBEE_MODELS_DIRS_ONLY=1 turns it off). */
  defaultModelDirs?: boolean;
  /** Heartbeats to the queen, and from the workers. Default 5000, env RBEE_HEARTBEAT_INTERVAL_MS. */
  heartbeatIntervalMs?: number;
  /** Workers shut down when no heartbeat reached the hive for this long (--orphan-timeout). Default 60000. */
  workerOrphanTimeoutMs?: number;
  /** Restart policy for crashed workers. Default 5 restarts in 10 min, backoff 1 s doubling to 30 s. */
  restart?: Partial<RestartPolicyOptions>;
  /** How long a spawn may take before it fails (a request may ask for another). Default 120000. */
  readyTimeoutMs?: number;
  /** The rbee CLI entry workers are spawned with. Default env RBEE_BIN, else this checkout's bin. */
  rbeeBin?: string;
  /** Default: structured JSON lines on stdout (service "hive"). */
  log?: Logger;
  /** Workers get the first free port from here upward. Default 9300, env RBEE_WORKER_PORT_START. */
  workerPortStart?: number;
  /** How long a stopping worker may finish in-flight requests (--shutdown-grace). Default 10000. */
  workerShutdownGraceMs?: number;
  /** How long after SIGTERM a worker is killed with SIGKILL. Default workerShutdownGraceMs + 5000. */
  stopGraceMs?: number;
  /** How often GPUs are detected again. Default 30000. */
  gpuRefreshMs?: number;
  /**
   * Keep a spare llm worker process ready (Node started, llama.cpp's CPU build loaded), so that the
   * next worker placed on the CPU only loads its model. Default true; env RBEE_SPARE_WORKER=0 turns it off.
   */
  spareWorker?: boolean;
  /** A spare worker process started before the hive (early-spare.ts): its first spare. */
  firstSpare?: StartedSpare;
  /**
   * An invalid change of a worker's supervision state (a bug) throws, instead of being logged as an
   * error and refused. Default false; env RBEE_STRICT_STATES=1 turns it on (the tests do).
   */
  strictStates?: boolean;
  /** Where the environment defaults (and RBEE_DEVICES) are read from. Default process.env. */
  env?: NodeJS.ProcessEnv;
  /**
   * The engine binaries on this machine, for the worker catalog. Default: the ones rbee built or was
   * given (RBEE_ENGINES_DIR, else <cache>/engines) and those on PATH.
   */
  findEngines?: () => Promise<EngineBinary[]>;
}

export interface ResolvedHiveOptions {
  port: number;
  host: string;
  queenUrl: string;
  hiveId: string;
  advertiseUrl: string | undefined;
  /** HTTPS (for the hive and its workers) when set. */
  tls: TlsFiles | undefined;
  cacheDir: string;
  configDir: string;
  modelsDirs: string[];
  defaultModelDirs: boolean;
  heartbeatIntervalMs: number;
  workerOrphanTimeoutMs: number;
  restart: RestartPolicyOptions;
  readyTimeoutMs: number;
  rbeeBin: string;
  log: Logger | undefined;
  workerPortStart: number;
  workerShutdownGraceMs: number;
  stopGraceMs: number;
  gpuRefreshMs: number;
  spareWorker: boolean;
  firstSpare: StartedSpare | undefined;
  strictStates: boolean;
  env: NodeJS.ProcessEnv;
  findEngines: (() => Promise<EngineBinary[]>) | undefined;
}

/** Fills in the defaults. Throws an Error naming the option or variable when one is malformed. */
export function resolveHiveOptions(given: HiveOptions = {}): ResolvedHiveOptions {
  const env = given.env ?? process.env;
  const str = (name: string): string | undefined => (env[name] === "" ? undefined : env[name]);
  const int = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const text = str(name);
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new Error(
        `environment variable ${name}=${JSON.stringify(text)} must be a whole number from ${min} to ${max}`,
      );
    }
    return n;
  };
  const workerShutdownGraceMs = given.workerShutdownGraceMs ?? 10_000;
  const options: ResolvedHiveOptions = {
    port: given.port ?? int("RBEE_HIVE_PORT", DEFAULT_PORTS.hive, 0, 65535),
    host: given.host ?? str("RBEE_HIVE_HOST") ?? "127.0.0.1",
    queenUrl: checkUrl(
      given.queenUrl ?? str("RBEE_QUEEN_URL") ?? `http://127.0.0.1:${DEFAULT_PORTS.queen}`,
      "queenUrl",
    ),
    hiveId: checkHiveId(given.hiveId ?? str("RBEE_HIVE_ID") ?? hiveIdFromHostname(hostname())),
    advertiseUrl: given.advertiseUrl === undefined ? undefined : checkUrl(given.advertiseUrl, "advertiseUrl"),
    tls: tlsFilesFrom(given, env),
    cacheDir: given.cacheDir ?? defaultCacheDir(env),
    configDir: given.configDir ?? defaultConfigDir(env),
    modelsDirs: given.modelsDirs ?? dirList(str("RBEE_MODELS_DIRS")),
    defaultModelDirs: given.defaultModelDirs ?? !/^(1|true|yes)$/i.test(str("RBEE_MODELS_DIRS_ONLY") ?? ""),
    heartbeatIntervalMs:
      given.heartbeatIntervalMs ?? int("RBEE_HEARTBEAT_INTERVAL_MS", DEFAULT_HEARTBEAT_INTERVAL_MS, 50),
    workerOrphanTimeoutMs: given.workerOrphanTimeoutMs ?? 60_000,
    restart: { ...DEFAULT_RESTART_POLICY, ...given.restart },
    readyTimeoutMs: given.readyTimeoutMs ?? 120_000,
    rbeeBin: given.rbeeBin ?? str("RBEE_BIN") ?? defaultRbeeBin(),
    log: given.log,
    workerPortStart: given.workerPortStart ?? int("RBEE_WORKER_PORT_START", DEFAULT_PORTS.workerBase, 1, 65535),
    workerShutdownGraceMs,
    stopGraceMs: given.stopGraceMs ?? workerShutdownGraceMs + 5_000,
    gpuRefreshMs: given.gpuRefreshMs ?? 30_000,
    // read from the process too when a given environment does not say (tests turn spares off for all hives)
    spareWorker:
      given.spareWorker ?? !/^(0|false|no)$/i.test(str("RBEE_SPARE_WORKER") ?? process.env.RBEE_SPARE_WORKER ?? ""),
    firstSpare: given.firstSpare,
    strictStates:
      given.strictStates ?? /^(1|true|yes)$/i.test(str("RBEE_STRICT_STATES") ?? process.env.RBEE_STRICT_STATES ?? ""),
    env,
    findEngines: given.findEngines,
  };
  if (options.heartbeatIntervalMs < 50) throw new Error("heartbeatIntervalMs must be at least 50 ms");
  checkAdvertisedScheme(options.advertiseUrl, options.tls !== undefined);
  return options;
}

/** A list of directories, ':' (or ';' on Windows) separated, as PATH is; each must be absolute. */
function dirList(text: string | undefined): string[] {
  const dirs = (text ?? "").split(delimiter).filter((d) => d.trim() !== "");
  for (const d of dirs) {
    if (!isAbsolute(d)) throw new Error(`RBEE_MODELS_DIRS names '${d}', which is not an absolute path`);
  }
  return dirs;
}

/** The host name as a hive id: lower case, runs of other characters as '-', at most 64 characters. */
export function hiveIdFromHostname(name: string): string {
  const id = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 64)
    .replace(/[._-]+$/, "");
  return id === "" ? "hive" : id;
}

function checkHiveId(id: string): string {
  if (!SafeId.safeParse(id).success) {
    throw new Error(
      `hive id '${id}' must be 1-128 characters of a-z, 0-9, '.', '_' or '-', not starting with '.' (RBEE_HIVE_ID)`,
    );
  }
  return id;
}

/** The queen reaches the hive (and its workers) at the advertised URL: its scheme must be what the hive serves. */
function checkAdvertisedScheme(advertiseUrl: string | undefined, tls: boolean): void {
  if (advertiseUrl === undefined) return;
  const https = new URL(advertiseUrl).protocol === "https:";
  if (tls && !https) {
    throw new Error(
      `advertiseUrl '${advertiseUrl}' is http:// but this hive serves HTTPS (--tls-cert): advertise an https:// URL`,
    );
  }
  if (!tls && https) {
    throw new Error(
      `advertiseUrl '${advertiseUrl}' is https:// but this hive serves plain HTTP: give it --tls-cert and --tls-key (RBEE_TLS_CERT, RBEE_TLS_KEY), or advertise an http:// URL`,
    );
  }
}

function checkUrl(text: string, what: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${what} '${text}' is not a URL; expected one like http://127.0.0.1:7833`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`${what} '${text}' must be an http:// or https:// URL`);
  }
  return text.replace(/\/+$/, "");
}
