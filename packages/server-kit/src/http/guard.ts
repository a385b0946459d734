import { hostname } from "node:os";
import { RbeeError } from "@rbee/contract";
import type { HttpContext } from "./context.js";

/**
 * Protections every daemon's HTTP server applies before routing, against requests that a web page
 * open in the user's browser could send (cross-site requests, DNS rebinding):
 *
 * - `Origin`: a request that carries one must come from the page's own origin (the dashboard the
 *   queen serves at `/`) or from an origin in the allow-list (`RBEE_ALLOWED_ORIGINS`, `*` for any);
 *   others are refused with 403 `origin_not_allowed`. Clients that are not browsers send no Origin.
 * - `Host` (when `checkHost`): the name the client used must be one this machine answers to: an IP
 *   address, `localhost` (and `*.localhost`), this machine's host name (also `.local`), or a name in
 *   `RBEE_ALLOWED_HOSTS`. A DNS-rebinding page reaches the daemon under the attacker's own domain
 *   name, which is refused with 403 `host_not_allowed`.
 *
 * JSON bodies are checked where they are read (HttpContext.json): `application/json` only (415),
 * nested at most {@link MAX_JSON_DEPTH} levels (400).
 */
export interface RequestGuardOptions {
  /** Check the Host header (the queen, whose routes can be open without keys). Default false. */
  checkHost?: boolean;
  /** Extra host names the daemon answers to, besides IP addresses, localhost and this machine's name. */
  allowedHosts?: readonly string[];
  /** Origins (`https://app.example:8080`) whose pages may call the daemon; `*` allows any. */
  allowedOrigins?: readonly string[];
}

/** How deep a JSON body may nest (objects and arrays); deeper bodies are refused with a 400. */
export const MAX_JSON_DEPTH = 64;

export class ForbiddenRequestError extends RbeeError {
  constructor(message: string, code: "origin_not_allowed" | "host_not_allowed") {
    super(message, { statusCode: 403, code });
  }
}

/** Splits a comma-separated list from the environment (`a, b,c`), dropping empty entries. */
export function listFromEnv(value: string | undefined): string[] {
  return (value ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** The guard's options from the environment (RBEE_ALLOWED_ORIGINS, RBEE_ALLOWED_HOSTS), merged with `given`. */
export function guardFromEnv(given: RequestGuardOptions = {}, env: NodeJS.ProcessEnv = process.env) {
  return {
    checkHost: given.checkHost ?? false,
    allowedHosts: [...(given.allowedHosts ?? []), ...listFromEnv(env.RBEE_ALLOWED_HOSTS)],
    allowedOrigins: [...(given.allowedOrigins ?? []), ...listFromEnv(env.RBEE_ALLOWED_ORIGINS)],
  } satisfies Required<RequestGuardOptions>;
}

function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || (host.startsWith("[") && host.endsWith("]"));
}

/** The host name of a `Host` header value or an origin's host (`name:port`, `[::1]:port`), lower case. */
function hostNameOf(hostPort: string): string {
  const h = hostPort.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.lastIndexOf(":");
  return (colon >= 0 ? h.slice(0, colon) : h).replace(/\.$/, "");
}

const MACHINE_NAMES = (() => {
  const name = hostname().toLowerCase();
  return new Set([name, `${name}.local`, name.split(".")[0] as string]);
})();

/** True when a browser addressing the daemon by this host name cannot be a DNS-rebinding attack on it. */
export function hostAllowed(hostHeader: string, allowed: readonly string[]): boolean {
  const name = hostNameOf(hostHeader);
  if (name === "") return false;
  if (isIpLiteral(name) || name === "localhost" || name.endsWith(".localhost")) return true;
  if (MACHINE_NAMES.has(name)) return true;
  return allowed.some((a) => a.toLowerCase() === name || a === "*");
}

/** Where a request's Origin points, as `scheme://host[:port]`, or undefined when it is not a URL. */
function originOf(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/**
 * Checks a request's Origin and Host (see {@link RequestGuardOptions}); returns the origin to answer
 * with CORS headers when it is an allowed foreign one.
 * @throws ForbiddenRequestError (403).
 */
export function guardRequest(ctx: HttpContext, o: Required<RequestGuardOptions>): string | undefined {
  const host = ctx.header("host");
  if (o.checkHost && host !== undefined && !hostAllowed(host, o.allowedHosts)) {
    throw new ForbiddenRequestError(
      `this daemon does not answer to the host name '${hostNameOf(host)}' (a protection against DNS rebinding); use its IP address, localhost or this machine's name, or allow the name with RBEE_ALLOWED_HOSTS`,
      "host_not_allowed",
    );
  }
  const origin = ctx.header("origin");
  if (origin === undefined) return undefined;
  const url = originOf(origin);
  // same origin: the dashboard the daemon serves itself
  if (url !== undefined && host !== undefined && url.host.toLowerCase() === host.trim().toLowerCase()) return undefined;
  if (o.allowedOrigins.includes("*") || (url !== undefined && o.allowedOrigins.includes(url.origin))) return origin;
  throw new ForbiddenRequestError(
    `requests from web pages of origin '${origin.slice(0, 200)}' are refused (a protection against cross-site requests); allow the origin with RBEE_ALLOWED_ORIGINS`,
    "origin_not_allowed",
  );
}

/**
 * How deeply a JSON text nests (objects and arrays), counted without parsing it, stopping at
 * `limit + 1`. Strings are skipped (with their escapes), so brackets inside them do not count.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}
