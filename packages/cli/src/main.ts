import { createRequire } from "node:module";
import { Command, CommanderError } from "commander";
import { workerCommand } from "./commands/worker.js";
import { CliError, EXIT } from "./exit-codes.js";

const require = createRequire(import.meta.url);
const VERSION = (require("../package.json") as { version: string }).version;

function program(): Command {
  const root = new Command("rbee")
    .description("rbee: your private AI cloud, in one command")
    .version(VERSION, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) });
  root.addCommand(workerCommand());
  // added subcommands do not inherit these settings: apply them down the tree, so that commander
  // never calls process.exit itself and every refusal becomes one line and exit code 2
  const apply = (cmd: Command) => {
    cmd.exitOverride().showHelpAfterError("(run with --help for usage)");
    for (const sub of cmd.commands) apply(sub);
  };
  apply(root);
  return root;
}

async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; everything commander refuses is a usage error
      process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
    }
    if (err instanceof CliError) {
      process.stderr.write(`rbee: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    process.stderr.write(`rbee: ${err instanceof Error ? err.message : String(err)}\n`);
    if (process.env.RBEE_DEBUG) console.error(err);
    process.exit(EXIT.failure);
  }
}

await main(process.argv);
