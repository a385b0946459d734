import { type Queen, startQueen } from "@rbee/queen";
import {
  quietLog,
  type StartedWorker,
  startLlmWorker,
  tempRbeeDirs,
  toolCallingTestModel,
  waitFor,
} from "@rbee/testing";

/** A real queen and a real llm worker on stories260K with Qwen2.5's tool-calling chat template. */
export interface ToolModelCluster {
  queen: Queen;
  worker: StartedWorker;
  /** The queen's OpenAI base URL (`.../v1`). */
  baseURL: string;
  /** The model id clients use. */
  model: string;
  close(): Promise<void>;
}

/**
 * Starts the queen, then a worker by hand that heartbeats to it (as openai-api.test.ts does; spawning
 * through hives is covered in cluster.test.ts), and waits until the queen routes to it.
 */
export async function startToolModelCluster(label: string): Promise<ToolModelCluster> {
  const model = await toolCallingTestModel();
  const dirs = tempRbeeDirs(label);
  const queen = await startQueen({
    log: quietLog("queen"),
    port: 0,
    configDir: dirs.configDir,
    cacheDir: dirs.cacheDir,
  });
  const worker = await startLlmWorker(
    ["--heartbeat-url", queen.url, "--heartbeat-interval", "0.3", "--model-id", "stories-tools"],
    { model, env: { RBEE_CLUSTER_TOKEN: queen.clusterToken } },
  );
  await waitFor(() => (queen.registry.routableWorkers("stories-tools").length > 0 ? true : undefined));
  return {
    queen,
    worker,
    baseURL: `${queen.url}/v1`,
    model: "stories-tools",
    close: async () => {
      await worker.child.stop();
      await queen.close();
    },
  };
}
