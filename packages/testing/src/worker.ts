import { type ChildHandle, startRbee } from "./child.js";
import { requireStoriesModel } from "./paths.js";

export interface StartedWorker {
  child: ChildHandle;
  url: string;
  port: number;
  model: string;
}

/**
 * Starts a real worker (`rbee worker serve <type>`) on a free port and waits for its
 * "worker ready" log line. Extra flags are appended; env is merged into the child's environment.
 * If it does not get ready, it is stopped and the error carries its output.
 */
export async function startWorker(
  type: string,
  extraArgs: readonly string[] = [],
  options: { env?: NodeJS.ProcessEnv; model?: string; timeoutMs?: number } = {},
): Promise<StartedWorker> {
  const model = options.model ?? requireStoriesModel();
  const child = startRbee(["worker", "serve", type, "--model", model, "--port", "0", ...extraArgs], {
    env: { RBEE_LOG_LEVEL: "info", ...options.env },
  });
  let ready: RegExpExecArray;
  try {
    ready = await child.waitForLine(/^\{.*"msg":"worker ready".*\}$/m, options.timeoutMs ?? 60_000);
  } catch (err) {
    await child.stop(2000);
    throw err;
  }
  const line = JSON.parse(ready[0]) as { url: string; model: string };
  const port = Number(new URL(line.url).port);
  return { child, url: line.url, port, model: line.model };
}

/** Starts a real llm worker (`rbee worker serve llm`); see startWorker. */
export function startLlmWorker(
  extraArgs: readonly string[] = [],
  options: { env?: NodeJS.ProcessEnv; model?: string; timeoutMs?: number } = {},
): Promise<StartedWorker> {
  return startWorker("llm", extraArgs, options);
}

/** Starts a real llama-server adapter (`rbee worker serve llama-server --engine <binary>`); see startWorker. */
export function startLlamaServerWorker(
  engine: string,
  extraArgs: readonly string[] = [],
  options: { env?: NodeJS.ProcessEnv; model?: string; timeoutMs?: number } = {},
): Promise<StartedWorker> {
  return startWorker("llama-server", ["--engine", engine, ...extraArgs], options);
}
