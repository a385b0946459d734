import { DEFAULT_HEARTBEAT_INTERVAL_MS } from "@rbee/contract";
import { envInt, envString } from "@rbee/server-kit";
import type { LlmWorkerOptions } from "@rbee/worker-llm";
import { Command, Option } from "commander";
import { CliError, EXIT } from "../exit-codes.js";
import { intArg, secondsArg, urlArg } from "../parse.js";

/** The worker's options as commander parses them: durations arrive in ms under the flag names. */
type ServeLlmFlags = Omit<
  LlmWorkerOptions,
  "heartbeatIntervalMs" | "orphanTimeoutMs" | "shutdownGraceMs" | "clusterToken"
> & {
  heartbeatInterval: number;
  orphanTimeout: number;
  shutdownGrace: number;
};

/** `rbee worker serve ...`: run a worker in this process (the hive uses this to spawn workers). */
export function workerServeCommand(): Command {
  const serve = new Command("serve").description(
    "run a worker in the foreground, serving the worker contract over HTTP",
  );
  serve
    .command("llm")
    .description("serve a GGUF model with llama.cpp (node-llama-cpp), on CPU, CUDA, Vulkan or Metal")
    .requiredOption("-m, --model <path>", "path of the .gguf model file")
    .option("--model-id <id>", "the name the model is served under (default: the file name without .gguf)")
    .option("--worker-id <id>", "this worker's id in heartbeats (default: llm-<random>)")
    .addOption(new Option("--host <addr>", "address to listen on").default(envString("RBEE_WORKER_HOST", "127.0.0.1")))
    .addOption(
      new Option("-p, --port <n>", "port to listen on (0 picks a free one)")
        .argParser(intArg(0, 65535))
        .default(envInt("RBEE_WORKER_PORT", 9300, 0)),
    )
    .option("-d, --device <id>", "cpu, cuda:N, vulkan:N, metal or rocm:N", "cpu")
    .option(
      "-t, --threads <n>",
      "compute threads (default: from the cores, the load and the model size)",
      intArg(1, 1024),
    )
    .option(
      "-c, --ctx-size <n>",
      "tokens of context per parallel request (default: the model's, at most 4096)",
      intArg(16, 1 << 20),
    )
    .option("--parallel <n>", "requests generated at the same time, batched in one context", intArg(1, 256), 4)
    .option("--max-queue <n>", "requests that may wait for a slot; more are refused with 429", intArg(0, 100_000), 64)
    .option("--batch-size <n>", "tokens per decode batch for prompt processing", intArg(1, 1 << 16))
    .addOption(
      new Option("--heartbeat-url <url>", "hive or queen to send heartbeats to")
        .argParser(urlArg)
        .default(envString("RBEE_HEARTBEAT_URL")),
    )
    .option("--heartbeat-interval <s>", "seconds between heartbeats", secondsArg(0.05), DEFAULT_HEARTBEAT_INTERVAL_MS)
    .option(
      "--orphan-timeout <s>",
      "stop when no heartbeat got through for this long (0: never)",
      secondsArg(0),
      60_000,
    )
    .option("--shutdown-grace <s>", "how long in-flight requests may finish after SIGTERM", secondsArg(0), 30_000)
    .action(async (flags: ServeLlmFlags) => {
      const { runLlmWorker } = await import("@rbee/worker-llm");
      if (flags.modelId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/.test(flags.modelId)) {
        throw new CliError(
          `--model-id '${flags.modelId}' may use letters, digits, '.', '_', ':', '/' and '-' only`,
          EXIT.usage,
        );
      }
      const { heartbeatInterval, orphanTimeout, shutdownGrace, ...options } = flags;
      await runLlmWorker({
        ...options,
        heartbeatIntervalMs: heartbeatInterval,
        orphanTimeoutMs: orphanTimeout,
        shutdownGraceMs: shutdownGrace,
        clusterToken: envString("RBEE_CLUSTER_TOKEN"),
      });
    });
  return serve;
}
