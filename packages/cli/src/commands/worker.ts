import { DeviceId, safeParse } from "@rbee/contract";
import { Command, InvalidArgumentError, Option } from "commander";
import { clientOf, configOf, printJson } from "../context.js";
import { CliError, EXIT } from "../exit-codes.js";
import { modelRef } from "../model-ref.js";
import { collect, intArg, keepAliveArg, workerTypeArg } from "../parse.js";
import { renderWorkers, renderWorkerTypes } from "../render/cluster.js";
import { runWithNarration } from "../run-job.js";
import { addWorkerPackageCommands } from "./worker-packages.js";
import { workerServeCommand, workerWarmCommand } from "./worker-serve.js";

interface SpawnFlags {
  model: string;
  type?: string;
  hive?: string;
  device?: string;
  devices?: string[];
  ctxSize?: number;
  parallel?: number;
  threads?: number;
  keepAlive?: number | string;
  replicas?: number;
  policy?: "spread" | "pack";
  config?: string[];
  configJson?: string;
  json?: boolean;
  quiet?: boolean;
}

/**
 * The worker's configuration from `--config-json '{...}'` and `--config key=value` (repeatable,
 * applied after it): a value that reads as JSON (5, true, null, "quoted", [1,2]) is that value,
 * anything else is a string. Undefined when neither is given.
 */
export function spawnConfig(
  pairs: readonly string[] | undefined,
  json: string | undefined,
): Record<string, unknown> | undefined {
  if (pairs === undefined && json === undefined) return undefined;
  let config: Record<string, unknown> = {};
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (err) {
      throw new CliError(
        `--config-json: not JSON (${(err as Error).message}); give an object, like '{"key": 1}'`,
        EXIT.usage,
      );
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw new CliError(`--config-json: must be a JSON object, like '{"key": 1}', got ${json}`, EXIT.usage);
    config = parsed as Record<string, unknown>;
  }
  for (const pair of pairs ?? []) {
    const at = pair.indexOf("=");
    if (at <= 0) throw new CliError(`--config: expected key=value, got '${pair}'`, EXIT.usage);
    const raw = pair.slice(at + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain word: a string
    }
    config[pair.slice(0, at)] = value;
  }
  return config;
}

/** `--devices hiveA:cpu,hiveB:cuda:0`: the devices of a worker group, `<hive>:<device>` each (`cpu:0` is the CPU). */
function devicesArg(value: string): string[] {
  const members = value.split(",").map((m) => m.trim().replace(/:cpu:0$/, ":cpu"));
  for (const m of members) {
    const at = m.indexOf(":");
    if (at <= 0 || !safeParse(DeviceId, m.slice(at + 1), "device").ok)
      throw new InvalidArgumentError(`expected <hive>:<device> such as gpu-box:cuda:0 or laptop:cpu, got '${m}'`);
  }
  if (members.length < 2) throw new InvalidArgumentError("a split needs at least two devices");
  return members;
}

function deviceArg(value: string): string {
  if (!safeParse(DeviceId, value, "device").ok) {
    throw new InvalidArgumentError(`expected cpu, cuda:N, metal:N, vulkan:N or rocm:N, got '${value}'`);
  }
  return value;
}

/** `rbee worker spawn|ls|stop|serve`. */
export function workerCommand(): Command {
  const worker = new Command("worker").description("start, list and stop workers (one model on one device each)");
  worker
    .command("spawn")
    .description("start a worker for a model through the queen (a spawn_worker job); prints its id")
    .requiredOption("-m, --model <model>", "a model id, or the path of a GGUF file on this machine")
    .option(
      "--type <worker-type>",
      "the worker type: llm (default), llama-server, ... (see `rbee worker types`); with --replicas, kept for the model",
      workerTypeArg,
    )
    .option("--hive <id>", "the hive to run it on (default: the queen chooses where it fits)")
    .option(
      "-d, --device <id>",
      "the device: cpu, cuda:N, metal:N, vulkan:N or rocm:N (default: the queen chooses)",
      deviceArg,
    )
    .option(
      "--devices <list>",
      "split the model over these devices as one worker group: hiveA:cuda:0,hiveB:cpu (shares in proportion to free memory; see docs/worker-groups.md)",
      devicesArg,
    )
    .option("-c, --ctx-size <n>", "tokens of context per parallel request", intArg(16, 1 << 20))
    .option("--parallel <n>", "requests it generates at the same time", intArg(1, 256))
    .option("-t, --threads <n>", "compute threads", intArg(1, 1024))
    .option(
      "--keep-alive <duration>",
      "stop it after this long without requests: 30s, 5m, 1h, forever (default: forever)",
      keepAliveArg,
    )
    .option(
      "--replicas <n>",
      "keep at least n workers of the model, spread over hives, placing new ones when some are lost (0 forgets the minimum)",
      intArg(0, 64),
    )
    .addOption(
      new Option(
        "--policy <policy>",
        "where new workers go: spread (default) or pack onto the fullest device that fits",
      ).choices(["spread", "pack"]),
    )
    .option(
      "--config <key=value>",
      "a setting of the worker's configuration (repeatable; checked against its package's config_schema, see `rbee worker info`)",
      collect,
    )
    .option("--config-json <json>", "the worker's configuration as a JSON object (--config settings apply after it)")
    .option("--json", "print the worker (with --replicas: every worker of the model) as JSON")
    .option("-q, --quiet", "no narration on stderr")
    .action(async (flags: SpawnFlags, cmd: Command) => {
      const config = spawnConfig(flags.config, flags.configJson);
      const result = (await runWithNarration(
        cmd,
        {
          type: "spawn_worker",
          model: modelRef(flags.model),
          worker_type: flags.type,
          hive: flags.hive,
          device: flags.device,
          devices: flags.devices,
          ctx_size: flags.ctxSize,
          parallel: flags.parallel,
          threads: flags.threads,
          keep_alive: flags.keepAlive,
          replicas: flags.replicas,
          policy: flags.policy,
          config,
        },
        flags.quiet === true,
      )) as { worker?: { worker_id?: unknown }; workers?: Array<{ worker_id?: unknown }> } | undefined;
      const workers = result?.workers ?? (result?.worker ? [result.worker] : []);
      const ids = workers.map((w) => w.worker_id);
      if (flags.replicas === 0) {
        if (flags.json) printJson(workers);
        return;
      }
      if (ids.length === 0 || ids.some((id) => typeof id !== "string"))
        throw new CliError("the queen's spawn_worker job ended without naming the worker");
      if (flags.json) printJson(flags.replicas === undefined ? result?.worker : workers);
      else process.stdout.write(`${ids.join("\n")}\n`);
    });
  worker
    .command("ls")
    .alias("list")
    .description("list the cluster's workers with their model, hive, device, status and load")
    .option("--json", "print them as a JSON array")
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const workers = await clientOf(configOf(cmd)).workers();
      if (flags.json) printJson(workers);
      else process.stdout.write(`${renderWorkers(workers)}\n`);
    });
  worker
    .command("stop")
    .description("stop a worker (a stop_worker job); its in-flight requests finish first")
    .argument("<id>", "the worker's id, as `rbee worker ls` shows it")
    .option("--drain", "route nothing new to it and wait for its requests in flight, however long, then stop it")
    .option("--json", "print the job's result as JSON")
    .option("-q, --quiet", "no narration on stderr")
    .action(async (id: string, flags: { drain?: boolean; json?: boolean; quiet?: boolean }, cmd: Command) => {
      const result = await runWithNarration(
        cmd,
        { type: "stop_worker", worker_id: id, ...(flags.drain ? { drain: true } : {}) },
        flags.quiet === true,
      );
      if (flags.json) printJson(result ?? { worker_id: id });
      else process.stdout.write(`${id}\n`);
    });
  worker
    .command("types")
    .description("list the worker types and, per hive, whether they can run there (their engines) and on which devices")
    .option("--json", "print the queen's GET /v1/worker-types as JSON")
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const types = await clientOf(configOf(cmd)).workerTypes();
      if (flags.json) printJson(types);
      else process.stdout.write(`${renderWorkerTypes(types)}\n`);
    });
  addWorkerPackageCommands(worker);
  worker.addCommand(workerServeCommand());
  worker.addCommand(workerWarmCommand(), { hidden: true });
  return worker;
}
