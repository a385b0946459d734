import {
  DEFAULT_ENGINE_START_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_OPENAI_ENGINE_START_TIMEOUT_MS,
  LLAMA_CPP_DEFAULTS,
  WorkerGroupSpawn,
} from "@rbee/contract";
import { envInt, envString } from "@rbee/server-kit/client";
import { Command, InvalidArgumentError, Option } from "commander";
import { CliError, EXIT } from "../exit-codes.js";
import { intArg, secondsArg, urlArg } from "../parse.js";

/** The flags every `rbee worker serve <type>` takes, as commander parses them (durations in ms). */
interface ServeFlags {
  model: string;
  modelId?: string;
  workerId?: string;
  host: string;
  port: number;
  device: string;
  threads?: number;
  ctxSize?: number;
  parallel: number;
  maxQueue: number;
  batchSize?: number;
  heartbeatUrl?: string;
  heartbeatInterval: number;
  orphanTimeout: number;
  shutdownGrace: number;
}

/** The worker options the shared flags give, in the names runLlmWorker and runLlamaServerWorker take. */
function workerOptions(flags: ServeFlags) {
  if (flags.modelId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/.test(flags.modelId)) {
    throw new CliError(
      `--model-id '${flags.modelId}' may use letters, digits, '.', '_', ':', '/' and '-' only`,
      EXIT.usage,
    );
  }
  const { heartbeatInterval, orphanTimeout, shutdownGrace, ...options } = flags;
  return {
    ...options,
    heartbeatIntervalMs: heartbeatInterval,
    orphanTimeoutMs: orphanTimeout,
    shutdownGraceMs: shutdownGrace,
    clusterToken: envString("RBEE_CLUSTER_TOKEN"),
  };
}

/**
 * Adds the flags every worker type shares (model, ids, address, device, threads, context, slots,
 * queue, heartbeats, shutdown), so that the hive starts every type with the same command line.
 */
function withWorkerFlags(command: Command, type: string, parallelHelp: string): Command {
  return command
    .requiredOption("-m, --model <path>", "path of the .gguf model file")
    .option("--model-id <id>", "the name the model is served under (default: the file name without .gguf)")
    .option("--worker-id <id>", `this worker's id in heartbeats (default: ${type}-<random>)`)
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
      `tokens of context per parallel request (default: the model's, at most ${LLAMA_CPP_DEFAULTS.maxContextSize})`,
      intArg(16, 1 << 20),
    )
    .option("--parallel <n>", parallelHelp, intArg(1, 256), LLAMA_CPP_DEFAULTS.parallel)
    .option("--max-queue <n>", "requests that may wait for a slot; more are refused with 429", intArg(0, 100_000), 64)
    .option("--batch-size <n>", "tokens per decode batch for prompt processing", intArg(1, 1 << 16))
    .addOption(
      new Option("--heartbeat-url <url>", "hive or queen to send heartbeats to")
        .argParser(urlArg)
        .default(envString("RBEE_HEARTBEAT_URL")),
    )
    .addOption(seconds("--heartbeat-interval <s>", "seconds between heartbeats", DEFAULT_HEARTBEAT_INTERVAL_MS, 0.05))
    .addOption(seconds("--orphan-timeout <s>", "stop when no heartbeat got through for this long (0: never)", 60_000))
    .addOption(seconds("--shutdown-grace <s>", "how long in-flight requests may finish after SIGTERM", 30_000));
}

/** Ollama's keep_alive: a number of seconds, or a Go duration such as 5m, 1h30m, 500ms; negative is forever. */
function keepAliveArg(value: string): string {
  if (!/^-?(\d+(\.\d+)?(ns|us|ms|s|m|h))+$|^-?\d+$/.test(value)) {
    throw new InvalidArgumentError(`expected a duration such as 5m, 1h, 30s, -1 (forever) or 0, got '${value}'`);
  }
  return value;
}

/** A duration flag given in seconds, parsed to milliseconds, whose help shows its default in seconds. */
function seconds(flags: string, description: string, defaultMs: number, min = 0): Option {
  return new Option(flags, description).argParser(secondsArg(min)).default(defaultMs, `${defaultMs / 1000} s`);
}

/** `--group <json>`: a worker group as the hive passes it to a coordinator. */
function groupArg(value: string): WorkerGroupSpawn {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError("expected the group as JSON");
  }
  const r = WorkerGroupSpawn.safeParse(parsed);
  if (!r.success) throw new InvalidArgumentError(`not a worker group: ${r.error.issues[0]?.message ?? "invalid"}`);
  return r.data;
}

/** `rbee worker serve ...`: run a worker in this process (the hive uses this to spawn workers). */
export function workerServeCommand(): Command {
  const serve = new Command("serve").description(
    "run a worker in the foreground, serving the worker contract over HTTP",
  );
  withWorkerFlags(
    serve
      .command("llm")
      .description("serve a GGUF model with llama.cpp (node-llama-cpp), on CPU, CUDA, Vulkan or Metal"),
    "llm",
    "requests generated at the same time, batched in one context",
  ).action(async (flags: ServeFlags) => {
    // llama.cpp's CPU build loads (its binary test runs in a child process) while the worker loads
    if (flags.device === "cpu") await prewarmFirst();
    const { runLlmWorker } = await import("@rbee/worker-llm");
    await runLlmWorker(workerOptions(flags));
  });

  withWorkerFlags(
    serve
      .command("llama-server")
      .description(
        "serve a GGUF model with llama.cpp's own llama-server, started and stopped by this adapter (llama-server never outlives it)",
      ),
    "llama-server",
    "requests generated at the same time (llama-server's --parallel, continuous batching)",
  )
    .option(
      "--engine <path>",
      "the llama-server binary (default: RBEE_LLAMA_SERVER, else the best of `rbee engine ls`: added, built, on PATH)",
    )
    .option("--no-embeddings", "do not serve embeddings (llama-server without --embeddings)")
    .addOption(
      seconds(
        "--engine-start-timeout <s>",
        "stop llama-server and fail when it is not ready after this long",
        DEFAULT_ENGINE_START_TIMEOUT_MS,
        0.1,
      ),
    )
    .option(
      "--engine-arg <arg>",
      "one more llama-server argument, passed as it is (repeat the flag for each; e.g. --engine-arg=-ngl --engine-arg=99)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .addOption(
      new Option("--engine-guard <how>", "how llama-server is tied to the adapter's life (tests)")
        .choices(["setpriv", "sh", "none"])
        .hideHelp(),
    )
    .addOption(
      new Option("--group <json>", "coordinate a worker group over its shards (set by the queen through the hive)")
        .argParser(groupArg)
        .hideHelp(),
    )
    .action(
      async (
        flags: ServeFlags & {
          engine?: string;
          embeddings: boolean;
          engineStartTimeout: number;
          engineArg?: string[];
          engineGuard?: "setpriv" | "sh" | "none";
          group?: WorkerGroupSpawn;
        },
      ) => {
        const { runLlamaServerWorker } = await import("@rbee/adapter-llama-server");
        const { engine, embeddings, engineStartTimeout, engineArg, engineGuard, group, ...shared } = flags;
        await runLlamaServerWorker({
          ...workerOptions(shared),
          engine,
          embeddings,
          engineStartTimeoutMs: engineStartTimeout,
          engineArgs: engineArg,
          guard: engineGuard,
          group,
        });
      },
    );

  withWorkerFlags(
    serve
      .command("rpc-shard")
      .description(
        "serve one device to a worker group: llama.cpp's ggml-rpc-server, started and stopped by this worker (spawned by the queen with a group)",
      ),
    "rpc-shard",
    "unused (a shard runs what its coordinator sends it)",
  )
    .requiredOption("--group-id <id>", "the worker group this shard belongs to")
    .requiredOption(
      "--rpc-host <addr>",
      "the address its RPC server binds (loopback, or the one the queen reaches this machine at; never 0.0.0.0)",
    )
    .requiredOption("--rpc-port <n>", "the port its RPC server binds", intArg(1, 65535))
    .option("--engine <path>", "the ggml-rpc-server binary (default: the best of `rbee engine ls`)")
    .addOption(
      new Option("--engine-guard <how>", "how ggml-rpc-server is tied to the worker's life (tests)")
        .choices(["setpriv", "sh", "none"])
        .hideHelp(),
    )
    .action(
      async (
        flags: ServeFlags & {
          groupId: string;
          rpcHost: string;
          rpcPort: number;
          engine?: string;
          engineGuard?: "setpriv" | "sh" | "none";
        },
      ) => {
        const { runRpcShardWorker } = await import("@rbee/adapter-llama-server");
        const { groupId, rpcHost, rpcPort, engine, engineGuard, ...shared } = flags;
        await runRpcShardWorker({ ...workerOptions(shared), groupId, rpcHost, rpcPort, engine, guard: engineGuard });
      },
    );

  withWorkerFlags(
    serve
      .command("ollama")
      .description(
        "serve an Ollama model through Ollama: attach to a running Ollama (default), or start `ollama serve` with --start (it never outlives this adapter)",
      ),
    "ollama",
    "requests this worker sends Ollama at once (set OLLAMA_NUM_PARALLEL on Ollama to match)",
  )
    .option(
      "--ollama-url <url>",
      "attach to the Ollama at this URL (default: RBEE_OLLAMA_URL, else OLLAMA_HOST as Ollama reads it, else http://127.0.0.1:11434)",
      urlArg,
    )
    .option("--start", "start `ollama serve` on a free loopback port instead of attaching (also RBEE_OLLAMA_START=1)")
    .option(
      "--engine <path>",
      "the ollama binary for --start (default: RBEE_OLLAMA, else `rbee engine add ollama`, else ollama on PATH)",
    )
    .option(
      "--keep-alive <duration>",
      "Ollama's keep_alive on every request: how long Ollama keeps the model loaded after it (5m, 1h, -1 forever, 0 unload at once; default RBEE_OLLAMA_KEEP_ALIVE, else Ollama's own)",
      keepAliveArg,
    )
    .addOption(
      seconds(
        "--engine-start-timeout <s>",
        "with --start: fail when ollama serve does not answer after this long",
        60_000,
        0.1,
      ),
    )
    .addOption(
      new Option("--engine-guard <how>", "how ollama serve is tied to the adapter's life (tests)")
        .choices(["setpriv", "sh", "none"])
        .hideHelp(),
    )
    .action(
      async (
        flags: ServeFlags & {
          ollamaUrl?: string;
          start?: boolean;
          engine?: string;
          keepAlive?: string;
          engineStartTimeout: number;
          engineGuard?: "setpriv" | "sh" | "none";
        },
      ) => {
        const { runOllamaWorker } = await import("@rbee/adapter-ollama");
        const { ollamaUrl, start, engine, keepAlive, engineStartTimeout, engineGuard, ...shared } = flags;
        const { threads: _t, batchSize: _b, ...rest } = workerOptions(shared);
        await runOllamaWorker({
          ...rest,
          ollamaUrl,
          start,
          engine,
          keepAlive,
          engineStartTimeoutMs: engineStartTimeout,
          guard: engineGuard,
        });
      },
    );
  for (const e of OPENAI_ENGINES) {
    withWorkerFlags(serve.command(e.type).description(e.description), e.type, e.parallelHelp)
      .option(
        `--${e.type}-url <url>`,
        `attach to the ${e.engine} running at this URL (default: ${e.urlEnv}); -m is then the model name it serves`,
        urlArg,
      )
      .option(
        "--engine <path>",
        `the ${e.engine} program to start (default: ${e.binaryEnv}, else \`rbee engine add ${e.engine}\`, else ${e.engine} on PATH)`,
      )
      .option(
        "--tensor-parallel <n>",
        "tensor-parallel size (default: the number of devices given with --device, e.g. cuda:0,cuda:1)",
        intArg(1, 64),
      )
      .addOption(
        seconds(
          "--engine-start-timeout <s>",
          `stop ${e.engine} and fail when it is not ready after this long`,
          DEFAULT_OPENAI_ENGINE_START_TIMEOUT_MS,
          0.1,
        ),
      )
      .option(
        "--engine-arg <arg>",
        `one more ${e.engine} argument, passed as it is (repeat the flag for each)`,
        (value: string, previous: string[] = []) => [...previous, value],
      )
      .addOption(
        new Option("--engine-guard <how>", `how ${e.engine} is tied to the adapter's life (tests)`)
          .choices(["setpriv", "sh", "none"])
          .hideHelp(),
      )
      .action(
        async (
          flags: ServeFlags & {
            vllmUrl?: string;
            trtllmUrl?: string;
            engine?: string;
            tensorParallel?: number;
            engineStartTimeout: number;
            engineArg?: string[];
            engineGuard?: "setpriv" | "sh" | "none";
          },
        ) => {
          const { runOpenAiEngineWorker, vllmAdapter } = await import("@rbee/adapter-vllm");
          const adapter = e.type === "vllm" ? vllmAdapter : (await import("@rbee/adapter-trtllm")).trtllmAdapter();
          const { vllmUrl, trtllmUrl, engine, tensorParallel, engineStartTimeout, engineArg, engineGuard, ...shared } =
            flags;
          const { threads: _t, batchSize: _b, ...rest } = workerOptions(shared);
          await runOpenAiEngineWorker(adapter, {
            ...rest,
            engineUrl: vllmUrl ?? trtllmUrl,
            engine,
            tensorParallel,
            engineStartTimeoutMs: engineStartTimeout,
            engineArgs: engineArg,
            guard: engineGuard,
          });
        },
      );
  }
  withWorkerFlags(
    serve
      .command("comfyui")
      .description(
        "generate images with ComfyUI: attach to a running ComfyUI (default), or start `python main.py` from a checkout with --comfyui-dir (it never outlives this adapter)",
      ),
    "comfyui",
    "requests this worker sends ComfyUI at once (ComfyUI runs one prompt at a time and queues the rest)",
  )
    .option(
      "--comfyui-url <url>",
      "attach to the ComfyUI at this URL (default: RBEE_COMFYUI_URL, else http://127.0.0.1:8188)",
      urlArg,
    )
    .option("--comfyui-dir <dir>", "start ComfyUI from this checkout instead of attaching (default: RBEE_COMFYUI_DIR)")
    .option("--python <path>", "the python that runs ComfyUI's main.py (default: RBEE_COMFYUI_PYTHON, else python3)")
    .option(
      "--workflow <file>",
      "a workflow in ComfyUI's API format with {{name}} inputs (default: RBEE_COMFYUI_WORKFLOW, else the shipped text-to-image workflow)",
    )
    .option(
      "--engine-arg <arg>",
      "one more main.py argument, passed as it is (repeat the flag for each; e.g. --engine-arg=--cpu)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .addOption(
      seconds(
        "--engine-start-timeout <s>",
        "with --comfyui-dir: fail when ComfyUI does not answer after this long",
        180_000,
        0.1,
      ),
    )
    .addOption(
      new Option("--engine-guard <how>", "how ComfyUI is tied to the adapter's life (tests)")
        .choices(["setpriv", "sh", "none"])
        .hideHelp(),
    )
    .action(
      async (
        flags: ServeFlags & {
          comfyuiUrl?: string;
          comfyuiDir?: string;
          python?: string;
          workflow?: string;
          engineArg?: string[];
          engineStartTimeout: number;
          engineGuard?: "setpriv" | "sh" | "none";
        },
      ) => {
        const { runComfyUiWorker } = await import("@rbee/adapter-comfyui");
        const { comfyuiUrl, comfyuiDir, python, workflow, engineArg, engineStartTimeout, engineGuard, ...shared } =
          flags;
        const { threads: _t, batchSize: _b, ctxSize: _c, ...rest } = workerOptions(shared);
        await runComfyUiWorker({
          ...rest,
          comfyuiUrl,
          comfyuiDir,
          python,
          workflow,
          engineArgs: engineArg,
          engineStartTimeoutMs: engineStartTimeout,
          guard: engineGuard,
        });
      },
    );
  return serve;
}

/**
 * `rbee worker warm`: a spare llm worker process a hive keeps ready (not for people: hidden). It
 * loads node-llama-cpp and llama.cpp's CPU build at once, then reads one line from stdin, the JSON
 * array of the `worker serve ...` arguments the hive would have started a worker with, and becomes
 * that worker. It exits quietly when stdin closes first (the hive stopped or no longer wants it).
 */
export function workerWarmCommand(): Command {
  return new Command("warm")
    .description("a spare llm worker that waits on stdin for its `worker serve` arguments (started by a hive)")
    .action(async () => {
      await prewarmFirst();
      // the rest of the worker loads while node-llama-cpp tests its binary, and before the line comes
      const loading = import("@rbee/worker-llm");
      loading.catch(() => {}); // a failure shows when the worker starts, not as an unhandled rejection
      const line = await firstLine(process.stdin);
      await loading;
      if (line === undefined) return;
      let args: unknown;
      try {
        args = JSON.parse(line);
      } catch {
        args = undefined;
      }
      if (!Array.isArray(args) || args[0] !== "serve" || !args.every((a) => typeof a === "string")) {
        throw new CliError("a warm worker expects one JSON array of `worker serve ...` arguments on stdin", EXIT.usage);
      }
      // seen as the worker it became (ps, and the hive's identity check after a restart): its id first,
      // in case the title is cut to the room the original command line had
      const [type, ...flags] = args.slice(1) as string[];
      const id = flags.filter((f) => f.startsWith("--worker-id="));
      process.title = ["rbee", "worker", "serve", type, ...id, ...flags.filter((f) => !id.includes(f))].join(" ");
      const serve = workerServeCommand();
      serve.exitOverride();
      await serve.parseAsync(args.slice(1), { from: "user" });
    })
    .helpOption(false);
}

/**
 * Imports node-llama-cpp alone and starts loading llama.cpp's CPU build: the binary test it runs
 * first is a child process, which then works beside this process's other imports.
 */
async function prewarmFirst(): Promise<void> {
  const { prewarmCpuLlama } = await import("@rbee/worker-llm/prewarm");
  void prewarmCpuLlama().catch(() => {});
}

/** The first line of a stream (without its newline); undefined when it ends before one. */
async function firstLine(stream: NodeJS.ReadableStream): Promise<string | undefined> {
  let text = "";
  for await (const chunk of stream) {
    text += String(chunk);
    const end = text.indexOf("\n");
    if (end >= 0) {
      stream.pause();
      return text.slice(0, end);
    }
  }
  return undefined;
}

/** The adapters of engines with an OpenAI-compatible server: one set of flags, their names. */
const OPENAI_ENGINES = [
  {
    type: "vllm",
    engine: "vllm",
    urlEnv: "RBEE_VLLM_URL",
    binaryEnv: "RBEE_VLLM",
    description:
      "serve a Hugging Face model with vLLM: start `vllm serve` (it never outlives this adapter), or attach to a running one with --vllm-url",
    parallelHelp: "requests generated at the same time (vLLM's --max-num-seqs)",
  },
  {
    type: "trtllm",
    engine: "trtllm-serve",
    urlEnv: "RBEE_TRTLLM_URL",
    binaryEnv: "RBEE_TRTLLM_SERVE",
    description:
      "serve a Hugging Face model with TensorRT-LLM: start `trtllm-serve` (it never outlives this adapter), or attach to a running one with --trtllm-url",
    parallelHelp: "requests generated at the same time (trtllm-serve's --max_batch_size)",
  },
] as const;
