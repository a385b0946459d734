import { UnauthorizedError } from "@rbee/contract";
import { bearerToken, type Middleware, secretEquals } from "@rbee/server-kit";
import type { ApiKeyStore } from "../store/api-key-store.js";

/**
 * OpenAI, job and cluster routes: open while no API key exists (the queen then only listens on
 * loopback), otherwise a valid key is required, sent as OpenAI's SDKs send it. The cluster token
 * counts as a key too: whoever can read it (the queen's own machine, its config dir) is its admin,
 * so the local CLI keeps working after the first `rbee key create`.
 */
export function apiKeyAuth(keys: ApiKeyStore, clusterToken: string): Middleware {
  return (ctx) => {
    if (!keys.enabled) return;
    const token = bearerToken(ctx);
    if (token === undefined) {
      throw new UnauthorizedError(
        "you didn't provide an API key: send it as 'Authorization: Bearer <key>' (the OpenAI SDKs do this with apiKey); create one with `rbee key create`",
      );
    }
    if (!keys.verify(token) && !secretEquals(token, clusterToken)) {
      throw new UnauthorizedError(
        `incorrect API key provided: ${token.slice(0, 8)}…; list valid keys with \`rbee key ls\``,
      );
    }
  };
}
