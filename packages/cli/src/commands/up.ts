import { Command } from "commander";
import { isLoopbackUrl, urlPort } from "../config.js";
import { clientOf, configOf, printJson } from "../context.js";
import { CliError, EXIT } from "../exit-codes.js";
import { queenListen, startQueenAndHive, waitForHive } from "../local-cluster.js";
import { stopAndReport } from "./daemon.js";
import { QUEEN_STOP_GRACE_MS } from "./queen.js";

/** `rbee up`: the queen and this machine's hive, in the background. */
export function upCommand(): Command {
  return new Command("up")
    .description(
      "start the queen and this machine's hive in the background (each unless it runs), and wait until they see each other",
    )
    .option("--json", "print where they run as JSON")
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const config = configOf(cmd);
      if (!isLoopbackUrl(config.queenUrl)) {
        throw new CliError(
          `the queen URL ${config.queenUrl} is not on this machine, and \`rbee up\` starts a queen here; to add this machine to that queen, run \`rbee hive start\``,
          EXIT.usage,
        );
      }
      const { queen, hive } = await startQueenAndHive(config);
      const hiveId = await waitForHive(clientOf(config), urlPort(hive.record.url));
      if (flags.json) {
        printJson({
          queen: { url: queen.record.url, pid: queen.record.pid || null, started: queen.started },
          hive: { id: hiveId, url: hive.record.url, pid: hive.record.pid || null, started: hive.started },
        });
        return;
      }
      const line = (name: string, s: typeof queen) =>
        `${name.padEnd(6)}${s.record.url}  ${s.foreign ? "(already answering, not started by rbee here)" : `pid ${s.record.pid}${s.started ? "" : " (already running)"}`}`;
      process.stdout.write(
        `${line("queen", queen)}\n${line("hive", hive)}  id ${hiveId}\n` +
          `rbee is up. OpenAI base URL: ${config.queenUrl}/v1 — try \`rbee infer -m <model.gguf> -p "Hello"\`\n`,
      );
    });
}

/** `rbee down`: the hive (which stops its workers), then the queen. */
export function downCommand(): Command {
  return new Command("down")
    .description("stop this machine's hive (and with it its workers), then the queen")
    .action(async (_flags: object, cmd: Command) => {
      const config = configOf(cmd);
      // the hive command's module brings in hives.conf, ssh and their schemas: loaded by `down` alone
      const { stopLocalHive } = await import("./hive.js");
      const errors: unknown[] = [];
      for (const step of [
        () => stopLocalHive(config),
        () => stopAndReport(config, "queen", QUEEN_STOP_GRACE_MS, queenListen(config).url),
      ]) {
        await step().catch((err: unknown) => errors.push(err));
      }
      for (const err of errors.slice(0, -1)) process.stderr.write(`rbee: ${(err as Error).message}\n`);
      if (errors.length > 0) throw errors.at(-1);
    });
}
