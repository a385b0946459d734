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

/** The digests of expected secrets, made once each (a comparison hashes only what is presented). */
const expectedDigests = new Map<string, Buffer>();

function expectedDigest(secret: string): Buffer {
  let d = expectedDigests.get(secret);
  if (d === undefined) {
    if (expectedDigests.size >= 256) expectedDigests.clear();
    d = digest(secret);
    expectedDigests.set(secret, d);
  }
  return d;
}

/**
 * Whether a presented secret (a token, a key, a key's hash) is the expected one, in constant time:
 * both are hashed first, so that neither their contents nor their lengths leak through timing. Every
 * comparison of a secret goes through here.
 */
export function matchesSecret(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), expectedDigest(expected));
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
    if (!accepted.some((t) => matchesSecret(given, t))) {
      throw new UnauthorizedError(`invalid ${options.what}; ${options.hint}`);
    }
  };
}
