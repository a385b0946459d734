import { Command, Option } from "commander";
import { configOf } from "../context.js";
import { claimPidFile, daemonFiles } from "../daemons.js";
import { concretePort, queenListen, startQueenDaemon } from "../local-cluster.js";
import { intArg } from "../parse.js";
import { daemonStatus, printDaemonStatus, stopAndReport } from "./daemon.js";

/** How long a stopping queen may take before it is killed. */
export const QUEEN_STOP_GRACE_MS = 10_000;

interface StartFlags {
  port?: number;
  host?: string;
  foreground?: boolean;
  tlsCert?: string;
  tlsKey?: string;
}

/** `rbee queen start|stop|status`: the brain of the cluster, on this machine. */
export function queenCommand(): Command {
  const queen = new Command("queen").description(
    "run the queen (the OpenAI-compatible API, jobs, cluster state) on this machine",
  );
  queen
    .command("start")
    .description("start the queen in the background (or in this terminal with --foreground)")
    .addOption(
      new Option(
        "--port <n>",
        "port to listen on; 0 picks a free one (default: RBEE_QUEEN_PORT, else the queen URL's port, else 7833)",
      ).argParser(intArg(0, 65535)),
    )
    .option(
      "--host <addr>",
      "address to listen on; other than loopback needs API keys (default: RBEE_QUEEN_HOST, else 127.0.0.1)",
    )
    .option("--foreground", "run in this process, logging to stdout, until Ctrl+C or SIGTERM")
    .option("--tls-cert <pem>", "serve HTTPS with this certificate (default: RBEE_TLS_CERT); see docs/security.md")
    .option("--tls-key <pem>", "the certificate's private key, unencrypted (default: RBEE_TLS_KEY)")
    .action(async (flags: StartFlags, cmd: Command) => {
      const config = configOf(cmd);
      const listen = queenListen(config, flags);
      if (flags.foreground) {
        const target = await concretePort(listen);
        claimPidFile(config.cacheDir, "queen", target.url);
        const { runQueen } = await import("@rbee/queen");
        await runQueen({
          port: target.port,
          host: target.host,
          configDir: config.configDir,
          cacheDir: config.cacheDir,
          tlsCert: flags.tlsCert,
          tlsKey: flags.tlsKey,
        });
        return;
      }
      const { record, started, foreign } = await startQueenDaemon(config, listen);
      const { logFile } = daemonFiles(config.cacheDir, "queen");
      if (foreign) process.stdout.write(`a queen already answers at ${record.url} (not started by rbee here)\n`);
      else if (!started) process.stdout.write(`queen already running at ${record.url} (pid ${record.pid})\n`);
      else process.stdout.write(`queen started at ${record.url} (pid ${record.pid}, log ${logFile})\n`);
    });
  queen
    .command("stop")
    .description("stop the queen started by `rbee queen start` or `rbee up`")
    .action(async (_flags: object, cmd: Command) => {
      const config = configOf(cmd);
      await stopAndReport(config, "queen", QUEEN_STOP_GRACE_MS, queenListen(config).url);
    });
  queen
    .command("status")
    .description("is the queen running? its URL, pid, version, uptime (exit 3 when it is not running)")
    .option("--json", "print the status as JSON")
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const config = configOf(cmd);
      printDaemonStatus(await daemonStatus(config, "queen", config.queenUrl), flags.json === true);
    });
  return queen;
}
