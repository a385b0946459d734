import {
  addEngine,
  BACKENDS,
  type Backend,
  BuildAbortedError,
  buildLlamaCpp,
  ENGINE_IDS,
  type EngineBinary,
  isBackend,
  isEngineId,
  LLAMA_CPP,
  listEngines,
  removeEngine,
  UnknownEngineError,
} from "@rbee/engines";
import { enginesDir } from "@rbee/server-kit/client";
import { Command, InvalidArgumentError } from "commander";
import { printJson } from "../context.js";
import { CliError, EXIT } from "../exit-codes.js";
import { intArg } from "../parse.js";
import { BuildProgressView } from "../render/build-progress.js";
import { renderTable } from "../render/table.js";
import { interruptSignal } from "../run-job.js";

function backendArg(value: string, previous: Backend[] | undefined): Backend[] {
  if (!isBackend(value)) throw new InvalidArgumentError(`expected one of ${BACKENDS.join(", ")}, got '${value}'`);
  return [...(previous ?? []), value];
}

function engineIdOf(id: string): string {
  if (!isEngineId(id)) throw new CliError(new UnknownEngineError(id).message, EXIT.usage);
  return id;
}

function renderEngines(list: readonly EngineBinary[]): string {
  if (list.length === 0) {
    return "no engines found: build llama.cpp's with `rbee engine build llama.cpp`, or register yours with `rbee engine add llama-server /path/to/llama-server`";
  }
  const columns = [
    { header: "ID" },
    { header: "VERSION" },
    { header: "BACKEND" },
    { header: "SOURCE" },
    { header: "STATUS" },
    { header: "PATH" },
  ];
  const rows = list.map((e) => [
    e.id,
    e.version ?? "-",
    e.backend ?? "-",
    e.source,
    e.status === "ok" ? "ok" : `broken: ${e.error ?? "unknown error"}`,
    e.path,
  ]);
  return renderTable(columns, rows);
}

/** `rbee engine build|add|rm|ls`: the engine binaries of this machine (llama.cpp's llama-server and friends). */
export function engineCommand(): Command {
  const engine = new Command("engine").description(
    "build, register and list the engine binaries of this machine (llama.cpp's llama-server, ggml-rpc-server, llama-bench; ollama)",
  );
  engine
    .command("build")
    .description(
      "build llama-server, ggml-rpc-server and llama-bench from the llama.cpp source node-llama-cpp ships, for the CPU and each GPU toolkit present; cached",
    )
    .argument("<engine>", `the engine to build: ${LLAMA_CPP}`)
    .option(
      "--backend <backend>",
      `build for this backend, even without its device (${BACKENDS.join(", ")}); repeatable; only the backends named are built (cpu always is); default: every one whose toolkit and device are present`,
      backendArg,
    )
    .option("--force", "build again even when a finished build exists (incremental in its kept work tree)")
    .option("--clean", "remove the work tree (source and object files) once the build is installed")
    .option("-j, --jobs <n>", "parallel compile jobs (default: the cores available)", intArg(1, 1024))
    .option("--verbose", "print every line of git's and cmake's output")
    .option("--json", "print the builds (engine.json of each) as JSON")
    .option("-q, --quiet", "nothing on stderr but errors")
    .action(
      async (
        name: string,
        flags: {
          backend?: Backend[];
          force?: boolean;
          clean?: boolean;
          jobs?: number;
          verbose?: boolean;
          json?: boolean;
          quiet?: boolean;
        },
      ) => {
        if (name !== LLAMA_CPP) throw new CliError(`unknown engine '${name}': rbee can build ${LLAMA_CPP}`, EXIT.usage);
        const tty = process.stderr.isTTY === true && !process.env.CI;
        const view = new BuildProgressView(process.stderr, { tty, verbose: flags.verbose });
        const interrupt = interruptSignal();
        try {
          const results = await buildLlamaCpp({
            enginesDir: enginesDir(),
            backends: flags.backend,
            force: flags.force,
            clean: flags.clean,
            jobs: flags.jobs,
            signal: interrupt.signal,
            onEvent: flags.quiet ? undefined : (e) => view.event(e),
          });
          view.finish();
          if (flags.json) printJson(results.map((r) => ({ dir: r.dir, cached: r.cached, ...r.record })));
          else for (const r of results) process.stdout.write(`${r.dir}\n`);
        } catch (err) {
          view.finish();
          if (err instanceof BuildAbortedError) throw new CliError(err.message, EXIT.interrupted);
          throw err;
        } finally {
          interrupt.dispose();
        }
      },
    );
  engine
    .command("add")
    .description("register an engine binary you already have (it must run and print llama.cpp's version)")
    .argument("<engine-id>", `one of ${ENGINE_IDS.join(", ")}`)
    .argument("<path>", "the binary")
    .option("--json", "print the entry as JSON")
    .action(async (id: string, path: string, flags: { json?: boolean }) => {
      const entry = await addEngine({ enginesDir: enginesDir(), id: engineIdOf(id), path });
      if (flags.json) printJson(entry);
      else process.stdout.write(`added ${entry.id} ${entry.path} (version ${entry.version ?? "unknown"})\n`);
    });
  engine
    .command("rm")
    .alias("remove")
    .description("unregister an engine binary added with `rbee engine add` (the file stays)")
    .argument("<engine-id>", `one of ${ENGINE_IDS.join(", ")}`)
    .argument("[path]", "only this binary (default: every one added for this engine)")
    .action(async (id: string, path: string | undefined) => {
      const removed = await removeEngine({ enginesDir: enginesDir(), id: engineIdOf(id), path });
      if (removed.length === 0) {
        throw new CliError(
          `no ${id}${path === undefined ? "" : ` at ${path}`} was added; \`rbee engine ls\` lists what is`,
          EXIT.notFound,
        );
      }
      for (const e of removed) process.stdout.write(`removed ${e.id} ${e.path}\n`);
    });
  engine
    .command("ls")
    .alias("list")
    .description("list the engine binaries of this machine: built by rbee, added, or on PATH, with version and status")
    .option("--json", "print them as a JSON array")
    .action(async (flags: { json?: boolean }) => {
      const list = await listEngines({
        enginesDir: enginesDir(),
        onWarning: (m) => process.stderr.write(`rbee: warning: ${m}\n`),
      });
      if (flags.json) printJson(list);
      else process.stdout.write(`${renderEngines(list)}\n`);
    });
  return engine;
}
