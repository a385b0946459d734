import { type ChildHandle, startRbee } from "./child.js";
import { requireStoriesModel } from "./paths.js";

export interface StartedWorker {
  child: ChildHandle;
  url: string;
  port: number;
  model: string;
}

/**
 * Starts a real llm worker (`rbee worker serve llm`) on a free port and waits for its
 * "worker ready" log line. Extra flags are appended; env is merged into the child's environment.
 */
export async function startLlmWorker(
  extraArgs: readonly string[] = [],
  options: { env?: NodeJS.ProcessEnv; model?: string; timeoutMs?: number } = {},
): Promise<StartedWorker> {
  const model = options.model ?? requireStoriesModel();
  const child = startRbee(["worker", "serve", "llm", "--model", model, "--port", "0", ...extraArgs], {
    env: { RBEE_LOG_LEVEL: "info", ...options.env },
  });
  const ready = await child.waitForLine(/^\{.*"msg":"worker ready".*\}$/m, options.timeoutMs ?? 60_000);
  const line = JSON.parse(ready[0]) as { url: string; model: string };
  const port = Number(new URL(line.url).port);
  return { child, url: line.url, port, model: line.model };
}
