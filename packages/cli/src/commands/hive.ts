import { Command, Option } from "commander";
import { configOf } from "../context.js";
import { claimPidFile, daemonFiles } from "../daemons.js";
import { concretePort, hiveListen, startHiveDaemon } from "../local-cluster.js";
import { intArg } from "../parse.js";
import { daemonStatus, printDaemonStatus, stopAndReport } from "./daemon.js";

/** How long a stopping hive may take (it stops its workers first, each with a grace period) before it is killed. */
export const HIVE_STOP_GRACE_MS = 40_000;

interface StartFlags {
  port?: number;
  host?: string;
  hiveId?: string;
  foreground?: boolean;
  tlsCert?: string;
  tlsKey?: string;
}

/** `rbee hive start|stop|status`: this machine's hive, which spawns and supervises its workers. */
export function hiveCommand(): Command {
  const hive = new Command("hive").description("run this machine's hive (it spawns and supervises the workers)");
  hive
    .command("start")
    .description(
      "start the hive in the background (or in this terminal with --foreground); it joins the queen at --queen-url",
    )
    .addOption(
      new Option("--port <n>", "port to listen on; 0 picks a free one (default: RBEE_HIVE_PORT, else 7835)").argParser(
        intArg(0, 65535),
      ),
    )
    .option("--host <addr>", "address to listen on, and the workers too (default: RBEE_HIVE_HOST, else 127.0.0.1)")
    .option("--hive-id <id>", "this hive's name in the cluster (default: RBEE_HIVE_ID, else the host name)")
    .option("--foreground", "run in this process, logging to stdout, until Ctrl+C or SIGTERM")
    .option(
      "--tls-cert <pem>",
      "serve HTTPS with this certificate, and so do its workers (default: RBEE_TLS_CERT); see docs/security.md",
    )
    .option("--tls-key <pem>", "the certificate's private key, unencrypted (default: RBEE_TLS_KEY)")
    .addHelpText(
      "after",
      "\nThe queen it joins is the global --queen-url (else RBEE_QUEEN_URL, config.json, http://127.0.0.1:7833).",
    )
    .action(async (flags: StartFlags, cmd: Command) => {
      const config = configOf(cmd);
      const listen = hiveListen(flags);
      if (flags.foreground) {
        const target = await concretePort(listen);
        claimPidFile(config.cacheDir, "hive", target.url);
        const { runHive } = await import("@rbee/hive");
        await runHive({
          port: target.port,
          host: target.host,
          queenUrl: config.queenUrl,
          hiveId: flags.hiveId,
          configDir: config.configDir,
          cacheDir: config.cacheDir,
          tlsCert: flags.tlsCert,
          tlsKey: flags.tlsKey,
        });
        return;
      }
      const { record, started, foreign } = await startHiveDaemon(config, listen, config.queenUrl, flags.hiveId);
      const { logFile } = daemonFiles(config.cacheDir, "hive");
      if (foreign) process.stdout.write(`a hive already answers at ${record.url} (not started by rbee here)\n`);
      else if (!started) process.stdout.write(`hive already running at ${record.url} (pid ${record.pid})\n`);
      else
        process.stdout.write(
          `hive started at ${record.url} (pid ${record.pid}, queen ${config.queenUrl}, log ${logFile})\n`,
        );
    });
  hive
    .command("stop")
    .description("stop the hive started by `rbee hive start` or `rbee up`; it stops its workers first")
    .action(async (_flags: object, cmd: Command) => {
      await stopAndReport(configOf(cmd), "hive", HIVE_STOP_GRACE_MS, hiveListen().url);
    });
  hive
    .command("status")
    .description("is the hive running? its URL, pid, id, version, uptime (exit 3 when it is not running)")
    .option("--json", "print the status as JSON")
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const s = await daemonStatus(configOf(cmd), "hive", hiveListen().url);
      const id = typeof s.health?.hive_id === "string" ? s.health.hive_id : undefined;
      printDaemonStatus(s, flags.json === true, id ? [["id", id]] : []);
    });
  return hive;
}
