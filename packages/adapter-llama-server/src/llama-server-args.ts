/** What a llama-server is started with, as the adapter decided it. */
export interface LlamaServerLaunch {
  modelPath: string;
  /** The name the model is served under (llama-server's --alias). */
  modelId: string;
  host: string;
  port: number;
  /** Slots: requests generated at the same time, continuously batched. */
  parallel: number;
  /** Tokens of context per slot; llama-server gets parallel × this as --ctx-size and splits it. */
  contextPerSlot: number;
  threads: number;
  /** Serve /embeddings too (llama-server's --embeddings; completions keep working, see docs). */
  embeddings: boolean;
  /** --pooling for embeddings, when the model declares none of its own. */
  pooling?: "mean" | "last" | "cls";
  /** Tokens per decode batch (prompt processing), when given. */
  batchSize?: number;
  /** Extra arguments passed through as they are (after rbee's own). */
  extraArgs?: readonly string[];
}

/**
 * The command line of a llama-server behind the adapter: one model, loopback only, `--parallel`
 * slots with continuous batching over a context of `parallel × contextPerSlot`, the adapter's
 * thread count for generation and prompt processing, Prometheus metrics on, no web UI.
 */
export function llamaServerArgs(l: LlamaServerLaunch): string[] {
  const args = [
    "--model",
    l.modelPath,
    "--alias",
    l.modelId,
    "--host",
    l.host,
    "--port",
    String(l.port),
    "--parallel",
    String(l.parallel),
    "--ctx-size",
    String(l.parallel * l.contextPerSlot),
    "--cont-batching",
    "--threads",
    String(l.threads),
    "--threads-batch",
    String(l.threads),
    "--metrics",
    "--no-webui",
  ];
  if (l.batchSize !== undefined) args.push("--batch-size", String(l.batchSize));
  if (l.embeddings) {
    args.push("--embeddings");
    if (l.pooling) args.push("--pooling", l.pooling);
  }
  if (l.extraArgs) args.push(...l.extraArgs);
  return args;
}
