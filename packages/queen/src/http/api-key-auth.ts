import { RbeeError, UnauthorizedError } from "@rbee/contract";
import { bearerToken, type Middleware, matchesSecret } from "@rbee/server-kit";
import type { ApiKeyStore } from "../store/api-key-store.js";

/**
 * OpenAI, job and cluster routes: open while no API key exists (the queen then only listens on
 * loopback), otherwise a valid key is required, sent as OpenAI's SDKs send it. The cluster token
 * counts as a key too: whoever can read it (the queen's own machine, its config dir) is its admin,
 * so the local CLI keeps working after the first `rbee key create`. Anthropic's clients send the key
 * as `x-api-key` (Claude Code with ANTHROPIC_API_KEY): accepted the same way.
 */
export function apiKeyAuth(keys: ApiKeyStore, clusterToken: string): Middleware {
  return (ctx) => {
    if (!keys.enabled) {
      // open (no keys): the queen listens on loopback only, and refuses browsers' cross-site requests
      ctx.facts.admin = true;
      return;
    }
    const token = bearerToken(ctx) ?? (ctx.header("x-api-key")?.trim() || undefined);
    if (token === undefined) {
      throw new UnauthorizedError(
        "you didn't provide an API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>' (the OpenAI and Anthropic SDKs do this with apiKey); create one with `rbee key create`",
      );
    }
    // the cluster token and admin keys are the cluster's administrator (see RequestFacts)
    if (matchesSecret(token, clusterToken) || keys.verifyAdmin(token)) {
      ctx.facts.admin = true;
      return;
    }
    if (!keys.verify(token)) {
      throw new UnauthorizedError(
        `incorrect API key provided: ${token.slice(0, 8)}…; list valid keys with \`rbee key ls\``,
      );
    }
  };
}

/**
 * The key routes (`/v1/keys`): open while no key exists, like every other route (the queen then
 * listens on loopback only), so that the first key can be made from the dashboard; afterwards the
 * cluster token or an admin key. A valid key that is not an admin is refused with 403.
 */
export function keyAdminAuth(keys: ApiKeyStore, clusterToken: string): Middleware {
  return (ctx) => {
    if (!keys.enabled) return;
    const token = bearerToken(ctx);
    if (token === undefined) {
      throw new UnauthorizedError(
        "managing API keys wants an admin key or the cluster token: send it as 'Authorization: Bearer <key>'",
      );
    }
    if (matchesSecret(token, clusterToken) || keys.verifyAdmin(token)) return;
    if (keys.verify(token)) {
      throw new RbeeError(
        "this API key cannot manage keys: use an admin key (created with admin) or the cluster token (`rbee key` on the queen's machine)",
        { statusCode: 403, code: "permission_denied" },
      );
    }
    throw new UnauthorizedError(
      `incorrect API key provided: ${token.slice(0, 8)}…; list valid keys with \`rbee key ls\``,
    );
  };
}
