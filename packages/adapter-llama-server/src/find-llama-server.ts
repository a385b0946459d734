import { RbeeError } from "@rbee/contract";
import { bestEngine, isBackend, listEngines } from "@rbee/engines";
import { enginesDir } from "@rbee/server-kit";

/** What to do when there is no llama-server, in every message that says so. */
export const LLAMA_SERVER_HINT =
  "build one with `rbee engine build llama.cpp` (needs cmake and a C++ compiler), register yours with `rbee engine add llama-server <path>`, or pass --engine <path> (or set RBEE_LLAMA_SERVER)";

/**
 * The llama-server binary to run: `--engine` when given, else RBEE_LLAMA_SERVER, else the best
 * working one among the machine's engines as `rbee engine ls` lists them (one added with
 * `rbee engine add`, then one `rbee engine build` made, preferring a build for the device's kind,
 * then `llama-server` on PATH). A path that was given is returned as it is: its checks, with clear
 * errors, come when it is started.
 */
export async function resolveLlamaServer(
  given: string | undefined,
  o: { env?: NodeJS.ProcessEnv; deviceKind?: string } = {},
): Promise<string> {
  const env = o.env ?? process.env;
  const chosen = given ?? env.RBEE_LLAMA_SERVER;
  if (chosen !== undefined && chosen !== "") return chosen;
  const engines = await listEngines({ env });
  const kind = o.deviceKind;
  const best = bestEngine(engines, "llama-server", kind !== undefined && isBackend(kind) ? kind : undefined);
  if (best) return best.path;
  const broken = engines.filter((e) => e.id === "llama-server" && e.status === "broken");
  const where =
    broken.length > 0
      ? `the ones found do not work: ${broken.map((e) => `${e.path} (${e.error})`).join("; ")}`
      : `none built in ${enginesDir(env)}, none added, none on PATH, RBEE_LLAMA_SERVER not set`;
  throw new RbeeError(`no working llama-server found (${where}): ${LLAMA_SERVER_HINT}`, {
    statusCode: 400,
    code: "engine_not_found",
  });
}
