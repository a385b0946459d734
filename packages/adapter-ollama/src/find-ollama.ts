import { RbeeError } from "@rbee/contract";
import { bestEngine, listEngines } from "@rbee/engines";
import { OLLAMA_HINT } from "./ollama-engine.js";

/**
 * The `ollama` binary start mode runs: `--engine` when given, else RBEE_OLLAMA, else the best working
 * one among the machine's engines (`rbee engine add ollama <path>`, then `ollama` on PATH).
 */
export async function resolveOllama(given: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const chosen = given ?? env.RBEE_OLLAMA;
  if (chosen !== undefined && chosen !== "") return chosen;
  const engines = await listEngines({ env });
  const best = bestEngine(engines, "ollama");
  if (best) return best.path;
  const broken = engines.filter((e) => e.id === "ollama" && e.status === "broken");
  const where =
    broken.length > 0
      ? `the ones found do not work: ${broken.map((e) => `${e.path} (${e.error})`).join("; ")}`
      : "none added, none on PATH, RBEE_OLLAMA not set";
  throw new RbeeError(`no working ollama binary found for --start (${where}): ${OLLAMA_HINT}`, {
    statusCode: 400,
    code: "engine_not_found",
  });
}

/** Ollama's URL from OLLAMA_HOST as Ollama reads it (`host`, `host:port`, `scheme://host:port`; port 11434 by default). */
export function ollamaUrlFromHost(value: string | undefined): string | undefined {
  const v = value?.trim();
  if (v === undefined || v === "") return undefined;
  const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(v) ? v : `http://${v}`);
  const host = u.hostname === "" || u.hostname === "0.0.0.0" ? "127.0.0.1" : u.hostname;
  return `${u.protocol}//${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${u.port === "" ? "11434" : u.port}`;
}
