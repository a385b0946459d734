import { createRequire } from "node:module";
import { Command, CommanderError, Option } from "commander";
import { CliError, EXIT } from "./exit-codes.js";
import { urlArg } from "./parse.js";

const require = createRequire(import.meta.url);
const VERSION = (require("../package.json") as { version: string }).version;

const USAGE_HINT = "(run with --help for usage)";

/**
 * The commands, in the order `rbee --help` lists them, each imported only when needed: a command's
 * module brings in what it runs (the contract's schemas, the daemons, the engines), so `rbee infer`
 * loads the infer command alone and `rbee --version` none.
 */
const COMMANDS: ReadonlyArray<readonly [name: string, load: () => Promise<Command>]> = [
  ["up", async () => (await import("./commands/up.js")).upCommand()],
  ["down", async () => (await import("./commands/up.js")).downCommand()],
  ["status", async () => (await import("./commands/status.js")).statusCommand()],
  ["infer", async () => (await import("./commands/infer.js")).inferCommand()],
  ["chat", async () => (await import("./commands/chat.js")).chatCommand()],
  ["image", async () => (await import("./commands/image.js")).imageCommand()],
  ["worker", async () => (await import("./commands/worker.js")).workerCommand()],
  ["model", async () => (await import("./commands/model.js")).modelCommand()],
  ["key", async () => (await import("./commands/key.js")).keyCommand()],
  ["queen", async () => (await import("./commands/queen.js")).queenCommand()],
  ["hive", async () => (await import("./commands/hive.js")).hiveCommand()],
  ["engine", async () => (await import("./commands/engine.js")).engineCommand()],
  ["catalog", async () => (await import("./commands/catalog.js")).catalogCommand()],
];

/** The root options that take a value: the word after them is not a command. */
const ROOT_OPTIONS_WITH_VALUE = new Set(["--queen-url", "--api-key"]);

/**
 * The commands to register for this command line: the one it names; none for a bare `--version`;
 * every one when it names none or an unknown one (root help, `rbee help <cmd>` and commander's
 * "did you mean" need them all).
 */
function commandsFor(args: readonly string[]): ReadonlyArray<readonly [string, () => Promise<Command>]> {
  let operand: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--") break;
    if (ROOT_OPTIONS_WITH_VALUE.has(arg)) i++;
    else if (!arg.startsWith("-")) {
      operand = arg;
      break;
    }
  }
  if (operand !== undefined) {
    const named = COMMANDS.filter(([name]) => name === operand);
    return named.length > 0 ? named : COMMANDS;
  }
  const help = args.includes("-h") || args.includes("--help");
  return !help && (args.includes("-V") || args.includes("--version")) ? [] : COMMANDS;
}

async function program(args: readonly string[]): Promise<Command> {
  const root = new Command("rbee")
    .description("rbee: your private AI cloud, in one command")
    .version(VERSION, "-V, --version")
    .addOption(
      new Option(
        "--queen-url <url>",
        "the queen to talk to (default: RBEE_QUEEN_URL, else config.json, else http://127.0.0.1:7833)",
      ).argParser(urlArg),
    )
    .addOption(new Option("--api-key <key>", "API key for the queen, once keys exist (default: RBEE_API_KEY)"))
    .addHelpText(
      "after",
      `
Start with \`rbee infer -m model.gguf -p "Once upon a time"\`: it starts the queen and this machine's hive when they are not running.
Exit codes: 0 ok, 1 failure, 2 usage, 3 queen unreachable, 4 not found, 130 interrupted. Docs: docs/cli.md`,
    );
  for (const cmd of await Promise.all(commandsFor(args).map(([, load]) => load()))) root.addCommand(cmd);
  // added subcommands do not inherit these settings: apply them down the tree, so that commander
  // never calls process.exit itself and every refusal becomes one line (printed by main) and exit 2
  const apply = (cmd: Command) => {
    cmd.exitOverride().configureOutput({ outputError: () => {} });
    for (const sub of cmd.commands) apply(sub);
  };
  apply(root);
  return root;
}

/** One line for a refusal of commander: "unknown option '--bogus' (run with --help for usage)". */
function usageLine(err: CommanderError): string {
  const message = err.message.replace(/^error: /, "").replace(/\n+/g, " ");
  return `${message} ${USAGE_HINT}`;
}

/**
 * Ends the process with `code` once stdout and stderr are flushed (exiting at once could cut a pipe's
 * tail on macOS). A stray handle (a keep-alive socket) cannot hold it up for more than a moment.
 */
function finish(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 1000).unref();
}

async function main(argv: string[]): Promise<void> {
  // `rbee ... | head`: a closed pipe ends the command quietly
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(EXIT.ok);
    throw err;
  });
  try {
    await (await program(argv.slice(2))).parseAsync(argv);
    finish(typeof process.exitCode === "number" ? process.exitCode : EXIT.ok);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; a command group run without its subcommand shows its help and exits 2
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version") return finish(EXIT.ok);
      if (err.code === "commander.help") return finish(EXIT.usage);
      process.stderr.write(`rbee: ${usageLine(err)}\n`);
      return finish(EXIT.usage);
    }
    if (process.env.RBEE_DEBUG) console.error(err);
    if (err instanceof CliError) {
      process.stderr.write(`rbee: ${err.message}\n`);
      return finish(err.exitCode);
    }
    process.stderr.write(`rbee: ${err instanceof Error ? err.message : String(err)}\n`);
    finish(EXIT.failure);
  }
}

await main(process.argv);
