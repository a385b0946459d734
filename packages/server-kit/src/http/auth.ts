import { createHash, timingSafeEqual } from "node:crypto";
import { UnauthorizedError } from "@rbee/contract";
import type { HttpContext } from "./context.js";
import type { Middleware } from "./router.js";

/** The token of an `Authorization: Bearer <token>` header, if any. */
export function bearerToken(ctx: HttpContext): string | undefined {
  const header = ctx.header("authorization");
  if (!header) return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(header.trim());
  return m?.[1]?.trim();
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

/** The digests of accepted tokens, made once each (a request hashes only the token it presents). */
const acceptedDigests = new Map<string, Buffer>();

function acceptedDigest(token: string): Buffer {
  let d = acceptedDigests.get(token);
  if (d === undefined) {
    if (acceptedDigests.size >= 256) acceptedDigests.clear();
    d = digest(token);
    acceptedDigests.set(token, d);
  }
  return d;
}

/** Compares secrets in constant time (hashing first so lengths do not leak). */
export function secretEquals(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export interface BearerAuthOptions {
  /** The accepted tokens, read on every request so that keys added at run time count. Empty: open. */
  tokens: () => readonly string[];
  /** What the token is, for the error message: "API key", "cluster token". */
  what: string;
  /** How to get one, for the error message. */
  hint: string;
}

/** Refuses requests without one of the accepted bearer tokens, with a 401 that says what to send. */
export function bearerAuth(options: BearerAuthOptions): Middleware {
  return (ctx) => {
    const accepted = options.tokens();
    if (accepted.length === 0) return;
    const given = bearerToken(ctx);
    if (given === undefined) {
      throw new UnauthorizedError(
        `missing ${options.what}: send it as 'Authorization: Bearer <${options.what}>'; ${options.hint}`,
      );
    }
    const presented = digest(given);
    if (!accepted.some((t) => timingSafeEqual(acceptedDigest(t), presented))) {
      throw new UnauthorizedError(`invalid ${options.what}; ${options.hint}`);
    }
  };
}
