import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_PORTS } from "@rbee/contract/light";
import { cacheDir, configDir } from "@rbee/server-kit/client";
import { CliError, EXIT } from "./exit-codes.js";

/**
 * The CLI's configuration, in one place. Precedence: flags > environment > `<configDir>/config.json`
 * > defaults. The file is optional: `{"queen_url": "http://gpu-box:7833", "api_key": "rbee_sk_..."}`.
 */
export const CONFIG_FILE = "config.json";

export interface ConfigFile {
  queen_url?: string;
  api_key?: string;
  /** Worker catalog servers, in the order they are searched. */
  catalogs?: string[];
}

/** The worker catalog server `rbee catalog serve` starts by default. */
export const DEFAULT_CATALOG_URL = `http://127.0.0.1:${DEFAULT_PORTS.catalogServer}`;

/** Where the queen URL came from; error messages and `rbee status` say so. */
export type QueenUrlSource = "flag" | "env" | "config" | "default";

export interface CliConfig {
  queenUrl: string;
  queenUrlSource: QueenUrlSource;
  /** An API key for the queen's OpenAI, job and cluster routes, when one was given. */
  apiKey: string | undefined;
  configDir: string;
  cacheDir: string;
  /**
   * How long a call to the queen may wait for the connection and the first byte of the answer, and a
   * stream for its next byte (RBEE_CLIENT_TIMEOUT_MS, default 15 s); a queen that does not answer
   * in time is "unreachable" (exit 3).
   */
  timeoutMs: number;
  /** Worker catalog servers: RBEE_CATALOG_URLS, else `catalogs` in config.json, else the local one. */
  catalogUrls: string[];
}

/** Default time the CLI waits for the queen's answer to start (and for a stream's next byte). */
export const DEFAULT_CLIENT_TIMEOUT_MS = 15_000;

/** The options every command inherits from `rbee` itself. */
export interface GlobalFlags {
  queenUrl?: string;
  apiKey?: string;
}

/** The default queen URL: this machine, on RBEE_QUEEN_PORT or 7833. */
export function defaultQueenUrl(env: NodeJS.ProcessEnv = process.env): string {
  const port = env.RBEE_QUEEN_PORT ? Number(env.RBEE_QUEEN_PORT) : DEFAULT_PORTS.queen;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new CliError(
      `RBEE_QUEEN_PORT=${JSON.stringify(env.RBEE_QUEEN_PORT)} must be a port from 1 to 65535`,
      EXIT.usage,
    );
  }
  return `http://127.0.0.1:${port}`;
}

/** Reads `<dir>/config.json`; a missing file is an empty config, a malformed one an error naming it. */
export function readConfigFile(dir: string): ConfigFile {
  const file = join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CliError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new CliError(`${file} must hold a JSON object like {"queen_url": "http://127.0.0.1:7833"}`);
  }
  const config = value as Record<string, unknown>;
  const out: ConfigFile = {};
  if (config.catalogs !== undefined) {
    const list = config.catalogs;
    if (!Array.isArray(list) || list.length === 0 || list.some((u) => typeof u !== "string")) {
      throw new CliError(`${file}: "catalogs" must be a list of catalog server URLs, like ["http://127.0.0.1:8787"]`);
    }
    out.catalogs = list.map((u: string) => normalizeUrl(u, `catalogs in ${file}`));
  }
  for (const key of ["queen_url", "api_key"] as const) {
    const v = config[key];
    if (v === undefined) continue;
    if (typeof v !== "string" || v === "") throw new CliError(`${file}: "${key}" must be a non-empty string`);
    out[key] = v;
  }
  return out;
}

/** Checks an http(s) URL and drops trailing slashes; `what` names its origin in the error. */
export function normalizeUrl(text: string, what: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new CliError(`${what} '${text}' is not a URL; expected one like http://127.0.0.1:7833`, EXIT.usage);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CliError(`${what} '${text}' must be an http:// or https:// URL`, EXIT.usage);
  }
  return text.replace(/\/+$/, "");
}

/** Resolves the CLI's configuration from the global flags, the environment and the config file. */
export function resolveCliConfig(flags: GlobalFlags = {}, env: NodeJS.ProcessEnv = process.env): CliConfig {
  const dir = configDir(env);
  const file = readConfigFile(dir);
  let queenUrl: string;
  let queenUrlSource: QueenUrlSource;
  if (flags.queenUrl) {
    queenUrl = normalizeUrl(flags.queenUrl, "--queen-url");
    queenUrlSource = "flag";
  } else if (env.RBEE_QUEEN_URL) {
    queenUrl = normalizeUrl(env.RBEE_QUEEN_URL, "RBEE_QUEEN_URL");
    queenUrlSource = "env";
  } else if (file.queen_url) {
    queenUrl = normalizeUrl(file.queen_url, `queen_url in ${join(dir, CONFIG_FILE)}`);
    queenUrlSource = "config";
  } else {
    queenUrl = defaultQueenUrl(env);
    queenUrlSource = "default";
  }
  return {
    queenUrl,
    queenUrlSource,
    apiKey: flags.apiKey || env.RBEE_API_KEY || file.api_key || undefined,
    configDir: dir,
    cacheDir: cacheDir(env),
    timeoutMs: clientTimeout(env),
    catalogUrls: env.RBEE_CATALOG_URLS
      ? env.RBEE_CATALOG_URLS.split(/[\s,]+/)
          .filter(Boolean)
          .map((u) => normalizeUrl(u, "RBEE_CATALOG_URLS"))
      : (file.catalogs ?? [DEFAULT_CATALOG_URL]),
  };
}

function clientTimeout(env: NodeJS.ProcessEnv): number {
  const text = env.RBEE_CLIENT_TIMEOUT_MS;
  if (text === undefined || text === "") return DEFAULT_CLIENT_TIMEOUT_MS;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new CliError(
      `RBEE_CLIENT_TIMEOUT_MS=${JSON.stringify(text)} must be a whole number of milliseconds ≥ 1`,
      EXIT.usage,
    );
  return n;
}

/** True for URLs on this machine (127.0.0.0/8, ::1, localhost): the ones `rbee` may start a queen for. */
export function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** The port of an http(s) URL, with the scheme's default when it names none. */
export function urlPort(url: string): number {
  const u = new URL(url);
  if (u.port) return Number(u.port);
  return u.protocol === "https:" ? 443 : 80;
}
