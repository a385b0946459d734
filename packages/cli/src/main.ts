import { createRequire } from "node:module";
import { Command, CommanderError, Option } from "commander";
import { catalogCommand } from "./commands/catalog.js";
import { chatCommand } from "./commands/chat.js";
import { engineCommand } from "./commands/engine.js";
import { hiveCommand } from "./commands/hive.js";
import { imageCommand } from "./commands/image.js";
import { inferCommand } from "./commands/infer.js";
import { keyCommand } from "./commands/key.js";
import { modelCommand } from "./commands/model.js";
import { queenCommand } from "./commands/queen.js";
import { statusCommand } from "./commands/status.js";
import { downCommand, upCommand } from "./commands/up.js";
import { workerCommand } from "./commands/worker.js";
import { CliError, EXIT } from "./exit-codes.js";
import { urlArg } from "./parse.js";

const require = createRequire(import.meta.url);
const VERSION = (require("../package.json") as { version: string }).version;

const USAGE_HINT = "(run with --help for usage)";

function program(): Command {
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
  for (const cmd of [
    upCommand(),
    downCommand(),
    statusCommand(),
    inferCommand(),
    chatCommand(),
    imageCommand(),
    workerCommand(),
    modelCommand(),
    keyCommand(),
    queenCommand(),
    hiveCommand(),
    engineCommand(),
    catalogCommand(),
  ]) {
    root.addCommand(cmd);
  }
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
    await program().parseAsync(argv);
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
