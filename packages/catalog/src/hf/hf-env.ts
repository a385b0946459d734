import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { ValidationError } from "@rbee/contract";

/** Where the Hub is when HF_ENDPOINT does not say. */
export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";

/**
 * The Hub's base URL: HF_ENDPOINT (a mirror, or a test server), else https://huggingface.co; no
 * trailing slash.
 * @throws ValidationError when HF_ENDPOINT is not an http(s) URL.
 */
export function hfEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  const raw = env.HF_ENDPOINT?.trim();
  if (!raw) return DEFAULT_HF_ENDPOINT;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValidationError(`HF_ENDPOINT='${raw}' is not a URL; set it to e.g. https://huggingface.co or a mirror`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ValidationError(`HF_ENDPOINT='${raw}' must be an http or https URL`);
  }
  return raw.replace(/\/+$/, "");
}

/** `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface` (huggingface_hub's rule). */
export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HOME) return env.HF_HOME;
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache"), "huggingface");
}

/** The hub cache: `$HF_HUB_CACHE`, else `$HUGGINGFACE_HUB_CACHE`, else `<hfHome>/hub`. */
export function hfHubCache(env: NodeJS.ProcessEnv = process.env): string {
  return env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(hfHome(env), "hub");
}

/**
 * The token for gated and private repos: HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file
 * `huggingface-cli login` writes (`$HF_TOKEN_PATH`, else `<hfHome>/token`); undefined when none.
 */
export function hfToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.HF_TOKEN?.trim() || env.HUGGING_FACE_HUB_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  try {
    const text = readFileSync(env.HF_TOKEN_PATH || join(hfHome(env), "token"), "utf8").trim();
    return text === "" ? undefined : text;
  } catch {
    return undefined;
  }
}
