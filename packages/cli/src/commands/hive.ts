import { delimiter, resolve } from "node:path";
import { envInt } from "@rbee/server-kit/client";
import { Command, Option } from "commander";
import { type CliConfig, urlPort } from "../config.js";
import { clientOf, configOf, printJson } from "../context.js";
import { claimPidFile, daemonFiles } from "../daemons.js";
import { CliError, EXIT } from "../exit-codes.js";
import { checkAlias, HivesConf, type NewHiveEntry, type ResolvedHive, resolveHive } from "../hives-conf.js";
import { concretePort, hiveListen, startHiveDaemon, waitForHive } from "../local-cluster.js";
import { collect, intArg, urlArg } from "../parse.js";
import {
  installRemote,
  queenUrlForHive,
  type RemoteStatus,
  startRemote,
  statusRemote,
  stopRemote,
  uninstallRemote,
  waitForQueenToSee,
} from "../remote-hive.js";
import { formatBytes, formatDuration } from "../render/format.js";
import { stderrNarrator } from "../render/narration.js";
import { renderTable } from "../render/table.js";
import { readSshConfigHost, sshConfigFile } from "../ssh.js";
import { daemonStatus, printDaemonStatus, stopAndReport } from "./daemon.js";

/** How long a stopping hive may take (it stops its workers first, each with a grace period) before it is killed. */
export const HIVE_STOP_GRACE_MS = 40_000;

/** How long a hive may take to stop its workers before it is killed: 40 s, or RBEE_HIVE_STOP_GRACE_MS. */
export function hiveStopGraceMs(): number {
  return envInt("RBEE_HIVE_STOP_GRACE_MS", HIVE_STOP_GRACE_MS, 1);
}

/**
 * Stops this machine's hive, then any of its workers still running (the hive was killed before it
 * stopped them: it was stuck, or took longer than its grace), so that the command returns only
 * once no worker of this cache directory runs.
 */
export async function stopLocalHive(config: CliConfig): Promise<void> {
  try {
    await stopAndReport(config, "hive", hiveStopGraceMs(), hiveListen().url);
  } finally {
    const { stopLeftoverWorkers } = await import("@rbee/hive");
    for (const w of await stopLeftoverWorkers(config.cacheDir, 10_000)) {
      process.stdout.write(
        `worker ${w.workerId} stopped (pid ${w.pid}, ${w.how === "exited" ? "it exited" : w.how}): its hive had not stopped it\n`,
      );
    }
  }
}

interface StartFlags {
  port?: number;
  host?: string;
  hiveId?: string;
  advertiseUrl?: string;
  foreground?: boolean;
  remoteQueenUrl?: string;
  wait?: boolean;
  quiet?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  modelsDir?: string[];
}

interface InstallFlags {
  allLlamaBuilds?: boolean;
  compress?: boolean;
  quiet?: boolean;
}

interface AddFlags {
  host?: string;
  user?: string;
  port?: number;
  identityFile?: string;
  hivePort?: number;
  hiveId?: string;
  remoteQueenUrl?: string;
  advertiseUrl?: string;
  listen?: string;
  node?: string;
  setEnv?: string[];
  fromSshConfig?: boolean;
}

function hivesConf(config: CliConfig): HivesConf {
  return HivesConf.read(HivesConf.path(config.configDir));
}

/** The entry for `alias`, with its defaults filled in (exit 4 when hives.conf has none). */
function remoteHive(config: CliConfig, alias: string): ResolvedHive {
  return resolveHive(hivesConf(config).require(alias));
}

/** Flags that only mean something for this machine's hive refuse an alias, naming where the setting lives. */
function refuseLocalFlags(alias: string, flags: StartFlags): void {
  if (flags.modelsDir !== undefined)
    throw new CliError(
      `--models-dir is for this machine's hive; for ${alias}, set RBEE_MODELS_DIRS in its environment (rbee hive add ${alias} --set-env RBEE_MODELS_DIRS=/dir1:/dir2)`,
      EXIT.usage,
    );
  const local: Array<[keyof StartFlags, string, string]> = [
    ["port", "--port", "HivePort"],
    ["host", "--host", "HiveListen"],
    ["hiveId", "--hive-id", "HiveId"],
    ["advertiseUrl", "--advertise-url", "AdvertiseUrl"],
    ["foreground", "--foreground", ""],
  ];
  for (const [key, flag, keyword] of local) {
    if (flags[key] === undefined) continue;
    throw new CliError(
      keyword
        ? `${flag} is for this machine's hive; for ${alias}, write '${keyword} ...' under Host ${alias} in hives.conf`
        : `${flag} runs this machine's hive in this terminal; it cannot be used with a hive alias (${alias})`,
      EXIT.usage,
    );
  }
}

function parseSetEnv(values: readonly string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf("=");
    if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v.slice(0, eq))) {
      throw new CliError(`--set-env takes NAME=value (like RBEE_DEVICES=cpu), got '${v}'`, EXIT.usage);
    }
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}

async function addHive(alias: string, flags: AddFlags, config: CliConfig): Promise<void> {
  checkAlias(alias);
  const conf = hivesConf(config);
  const entry: NewHiveEntry = {
    alias,
    hostName: flags.host,
    user: flags.user,
    port: flags.port,
    identityFile: flags.identityFile,
    hivePort: flags.hivePort,
    hiveId: flags.hiveId,
    queenUrl: flags.remoteQueenUrl,
    advertiseUrl: flags.advertiseUrl,
    hiveListen: flags.listen,
    nodePath: flags.node,
    setEnv: parseSetEnv(flags.setEnv),
  };
  if (flags.fromSshConfig) {
    const found = await readSshConfigHost(alias);
    entry.hostName ??= found.hostName;
    entry.user ??= found.user;
    entry.port ??= found.port;
    entry.identityFile ??= found.identityFile;
  } else if (flags.host === undefined) {
    throw new CliError(
      `give ${alias}'s address with --host (like --host 192.168.1.20), or take it from ${sshConfigFile()} with --from-ssh-config`,
      EXIT.usage,
    );
  }
  conf.add(entry);
  conf.save();
  const added = resolveHive(conf.require(alias));
  process.stdout.write(
    `added ${alias} to ${conf.file}: ssh ${added.user ? `${added.user}@` : ""}${added.hostName}${added.sshPort ? ` port ${added.sshPort}` : ""}, hive ${added.advertiseUrl}\n` +
      `next: rbee hive install ${alias}, then rbee hive start ${alias}\n`,
  );
}

async function listHives(config: CliConfig, json: boolean): Promise<void> {
  const conf = hivesConf(config);
  const hives = conf.entries().map(resolveHive);
  // what the queen knows, when it answers quickly; the list is useful without it
  const states = new Map<string, string>();
  let queenReached = false;
  try {
    const client = clientOf(config);
    if (await client.isUp(1500)) {
      for (const h of (await client.cluster()).hives) states.set(h.id, h.state);
      queenReached = true;
    }
  } catch {}
  if (json) {
    printJson(
      hives.map((h) => ({
        alias: h.alias,
        host_name: h.hostName,
        user: h.user ?? null,
        ssh_port: h.sshPort ?? null,
        identity_file: h.identityFile ?? null,
        hive_port: h.hivePort,
        hive_id: h.hiveId,
        advertise_url: h.advertiseUrl,
        hive_listen: h.hiveListen,
        queen_url: h.queenUrl ?? null,
        node_path: h.nodePath ?? null,
        set_env: h.setEnv,
        line: h.line,
        queen_state: queenReached ? (states.get(h.hiveId) ?? "unknown") : null,
      })),
    );
    return;
  }
  if (hives.length === 0) {
    process.stdout.write(`no hives in ${conf.file}; add one with \`rbee hive add <alias> --host <address>\`\n`);
    return;
  }
  const rows = hives.map((h) => [
    h.alias,
    `${h.user ? `${h.user}@` : ""}${h.hostName}${h.sshPort ? `:${h.sshPort}` : ""}`,
    h.advertiseUrl,
    h.hiveId,
    queenReached ? (states.get(h.hiveId) ?? "not seen") : "?",
  ]);
  const table = renderTable(
    [{ header: "alias" }, { header: "ssh" }, { header: "hive url" }, { header: "hive id" }, { header: "queen" }],
    rows,
  );
  process.stdout.write(`${table}\n`);
  if (!queenReached) process.stdout.write(`(queen at ${config.queenUrl} not reachable: QUEEN shows ?)\n`);
}

function printRemoteStatus(s: RemoteStatus): void {
  const hive = s.hive ?? {};
  const q = s.queen;
  const queenLine =
    q.error !== null
      ? `cannot ask the queen at ${q.url}: ${q.error}`
      : q.state === null
        ? `does not know this hive (${q.url})`
        : `${q.state}, last heartbeat ${formatDuration(q.last_seen_ms)} ago, at ${q.url_seen} (queen ${q.url})`;
  const rows: Array<[string, string]> = [
    ["ssh", s.ssh],
    ["rbee", s.version_note],
    ["url", s.advertise_url],
  ];
  if (s.running) {
    if (typeof hive.pid === "number") rows.push(["pid", String(hive.pid)]);
    if (typeof hive.version === "string") rows.push(["runs", hive.version]);
    if (typeof hive.uptime_ms === "number") rows.push(["uptime", formatDuration(hive.uptime_ms)]);
  }
  rows.push(["queen", queenLine]);
  if (typeof hive.log_file === "string") rows.push(["log", `${hive.log_file} (on ${s.alias})`]);
  const state = s.running ? "running" : s.installed ? "not running" : "not installed";
  process.stdout.write(`hive ${s.alias}: ${state}\n${rows.map(([k, v]) => `  ${k.padEnd(7)} ${v}`).join("\n")}\n`);
}

/** `rbee hive ...`: this machine's hive (start|stop|status), and the machines of hives.conf over ssh. */
export function hiveCommand(): Command {
  const hive = new Command("hive").description(
    "run this machine's hive (it spawns and supervises the workers), or enroll and run other machines' hives over ssh",
  );
  hive
    .command("start")
    .argument("[alias]", "a machine from hives.conf: start its hive over ssh")
    .description(
      "start the hive in the background (or in this terminal with --foreground); it joins the queen at --queen-url. With an alias, start that machine's hive over ssh",
    )
    .addOption(
      new Option("--port <n>", "port to listen on; 0 picks a free one (default: RBEE_HIVE_PORT, else 7835)").argParser(
        intArg(0, 65535),
      ),
    )
    .option("--host <addr>", "address to listen on, and the workers too (default: RBEE_HIVE_HOST, else 127.0.0.1)")
    .option("--hive-id <id>", "this hive's name in the cluster (default: RBEE_HIVE_ID, else the host name)")
    .addOption(
      new Option(
        "--advertise-url <url>",
        "the URL the queen reaches this hive at (default: http://<host>:<port>; for 0.0.0.0 the first LAN address)",
      ).argParser(urlArg),
    )
    .option("--foreground", "run in this process, logging to stdout, until Ctrl+C or SIGTERM")
    .addOption(
      new Option(
        "--remote-queen-url <url>",
        "with an alias: the queen's URL as that machine reaches it (default: QueenUrl in hives.conf, else --queen-url)",
      ).argParser(urlArg),
    )
    .option("--no-wait", "do not wait for the queen to hear from the hive before returning")
    .option("-q, --quiet", "no progress lines on stderr")
    .option(
      "--tls-cert <pem>",
      "serve HTTPS with this certificate, and so do its workers (default: RBEE_TLS_CERT); see docs/security.md",
    )
    .option("--tls-key <pem>", "the certificate's private key, unencrypted (default: RBEE_TLS_KEY)")
    .option(
      "--models-dir <dir>",
      "a directory requests may name model files in (repeatable; adds to RBEE_MODELS_DIRS). Always allowed: the model cache, the Hugging Face cache, and your home and this directory outside hidden directories",
      (dir: string, dirs: string[] = []) => [...dirs, resolve(dir)],
    )
    .addHelpText(
      "after",
      "\nThe queen it joins is the global --queen-url (else RBEE_QUEEN_URL, config.json, http://127.0.0.1:7833).",
    )
    .action(async (alias: string | undefined, flags: StartFlags, cmd: Command) => {
      const config = configOf(cmd);
      if (alias !== undefined) {
        refuseLocalFlags(alias, flags);
        const h = remoteHive(config, alias);
        const narrator = stderrNarrator(flags.quiet === true);
        const queenUrl = queenUrlForHive(h, config, flags.remoteQueenUrl);
        const started = await startRemote({ hive: h, narrator, queenUrl, configDir: config.configDir });
        for (const line of started.remote.split("\n").filter(Boolean)) narrator.say(`${alias}: ${line}`);
        if (/^(hive already running|a hive already answers)/m.test(started.remote)) {
          process.stdout.write(`hive ${alias} already running (${h.advertiseUrl}, id ${h.hiveId})\n`);
          return;
        }
        if (flags.wait !== false) {
          narrator.say(`${alias}: waiting for the queen at ${config.queenUrl} to hear from it`);
          await waitForQueenToSee(clientOf(config), h, 30_000);
        }
        process.stdout.write(
          `hive ${alias} started (${h.advertiseUrl}, id ${h.hiveId}, queen ${queenUrl})${flags.wait !== false ? "; the queen sees it" : ""}\n`,
        );
        return;
      }
      if (flags.modelsDir !== undefined && flags.modelsDir.length > 0) {
        // the hive reads it from its environment, also when started in the background
        process.env.RBEE_MODELS_DIRS = [process.env.RBEE_MODELS_DIRS, ...flags.modelsDir]
          .filter(Boolean)
          .join(delimiter);
      }
      const listen = hiveListen(flags);
      if (flags.foreground) {
        const target = await concretePort(listen);
        claimPidFile(config.cacheDir, "hive", target.url);
        // the spare worker first: its start is a cold `rbee infer`'s longest path, and loading the hive takes a while
        const { startEarlySpare } = await import("@rbee/hive/early-spare");
        const firstSpare = startEarlySpare({
          cacheDir: config.cacheDir,
          configDir: config.configDir,
          tls: flags.tlsCert !== undefined || flags.tlsKey !== undefined,
        });
        const { runHive } = await import("@rbee/hive");
        await runHive({
          firstSpare,
          port: target.port,
          host: target.host,
          queenUrl: config.queenUrl,
          hiveId: flags.hiveId,
          advertiseUrl: flags.advertiseUrl,
          configDir: config.configDir,
          cacheDir: config.cacheDir,
          tlsCert: flags.tlsCert,
          tlsKey: flags.tlsKey,
        });
        return;
      }
      const { record, started, foreign } = await startHiveDaemon(
        config,
        listen,
        config.queenUrl,
        flags.hiveId,
        flags.advertiseUrl,
      );
      const { logFile } = daemonFiles(config.cacheDir, "hive");
      if (foreign) process.stdout.write(`a hive already answers at ${record.url} (not started by rbee here)\n`);
      else if (!started) process.stdout.write(`hive already running at ${record.url} (pid ${record.pid})\n`);
      else {
        // the next command (`rbee model download`, `rbee infer`) needs the queen to know the hive:
        // return once it does, when the queen is up (a hive may start before its queen)
        const client = clientOf(config);
        const seen = flags.wait !== false && (await client.isUp());
        if (seen) await waitForHive(client, urlPort(record.url));
        process.stdout.write(
          `hive started at ${record.url} (pid ${record.pid}, queen ${config.queenUrl}${seen ? ", which sees it" : ""}, log ${logFile})\n`,
        );
      }
    });
  hive
    .command("stop")
    .argument("[alias]", "a machine from hives.conf: stop its hive over ssh")
    .description("stop the hive started by `rbee hive start` or `rbee up`; it stops its workers first")
    .action(async (alias: string | undefined, _flags: object, cmd: Command) => {
      const config = configOf(cmd);
      if (alias !== undefined) {
        const said = await stopRemote({ hive: remoteHive(config, alias), narrator: stderrNarrator() });
        process.stdout.write(`${alias}: ${said}\n`);
        return;
      }
      await stopLocalHive(config);
    });
  hive
    .command("status")
    .argument("[alias]", "a machine from hives.conf: its hive, over ssh, and whether the queen sees it")
    .description("is the hive running? its URL, pid, id, version, uptime (exit 3 when it is not running)")
    .option("--json", "print the status as JSON")
    .action(async (alias: string | undefined, flags: { json?: boolean }, cmd: Command) => {
      const config = configOf(cmd);
      if (alias !== undefined) {
        const s = await statusRemote({
          hive: remoteHive(config, alias),
          narrator: stderrNarrator(),
          client: clientOf(config),
        });
        if (flags.json) printJson(s);
        else printRemoteStatus(s);
        if (!s.running) process.exitCode = EXIT.unavailable;
        return;
      }
      const s = await daemonStatus(config, "hive", hiveListen().url);
      const id = typeof s.health?.hive_id === "string" ? s.health.hive_id : undefined;
      printDaemonStatus(s, flags.json === true, id ? [["id", id]] : []);
    });
  hive
    .command("add")
    .argument("<alias>", "the machine's name here (and its hive id, unless --hive-id)")
    .description("add a machine to hives.conf (nothing is changed on the machine itself)")
    .option("--host <address>", "its address or DNS name: where ssh connects and what the hive advertises")
    .option("--user <name>", "the ssh login (default: ssh's own choice)")
    .addOption(new Option("--port <n>", "the ssh port (default: ssh's, 22)").argParser(intArg(1, 65535)))
    .option("--identity-file <path>", "the ssh key to log in with")
    .addOption(new Option("--hive-port <n>", "the port its hive listens on (default 7835)").argParser(intArg(1, 65535)))
    .option("--hive-id <id>", "its hive's id in the cluster (default: the alias in lower case)")
    .addOption(
      new Option("--remote-queen-url <url>", "the queen's URL as that machine reaches it (QueenUrl)").argParser(urlArg),
    )
    .addOption(
      new Option(
        "--advertise-url <url>",
        "the URL the queen reaches its hive at (default: http://<host>:<hive port>)",
      ).argParser(urlArg),
    )
    .option(
      "--listen <address>",
      "the address its hive listens on (default: 0.0.0.0, or 127.0.0.1 for a loopback host)",
    )
    .option("--node <path>", "node on that machine, when a non-interactive ssh login does not find it on the PATH")
    .option("--set-env <NAME=value>", "environment for rbee there (repeatable), like RBEE_DEVICES=cpu", collect)
    .option("--from-ssh-config", "take the address, user, port and key from the Host entry of ~/.ssh/config")
    .action(async (alias: string, flags: AddFlags, cmd: Command) => {
      await addHive(alias, flags, configOf(cmd));
    });
  hive
    .command("ls")
    .description("list the machines of hives.conf, and whether the queen sees their hives")
    .option("--json", "print them as JSON")
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      await listHives(configOf(cmd), flags.json === true);
    });
  hive
    .command("rm")
    .argument("<alias>", "the machine to remove")
    .description("remove a machine from hives.conf (stop its hive first with `rbee hive stop <alias>`)")
    .action(async (alias: string, _flags: object, cmd: Command) => {
      const conf = hivesConf(configOf(cmd));
      conf.require(alias);
      conf.remove(alias);
      conf.save();
      process.stdout.write(`removed ${alias} from ${conf.file}\n`);
    });
  hive
    .command("install")
    .argument("<alias>", "a machine from hives.conf")
    .description("install this rbee on that machine over ssh (into ~/.local/share/rbee); stops its hive first")
    .option("--all-llama-builds", "copy the CUDA and Vulkan builds of llama.cpp even where no such GPU was found")
    .option("--no-compress", "send the files without gzip (faster on a fast LAN when this machine's CPU is slow)")
    .option("-q, --quiet", "no progress lines on stderr")
    .action(async (alias: string, flags: InstallFlags, cmd: Command) => {
      const h = remoteHive(configOf(cmd), alias);
      const narrator = stderrNarrator(flags.quiet === true);
      const r = await installRemote({
        hive: h,
        narrator,
        allLlamaBuilds: flags.allLlamaBuilds === true,
        compress: flags.compress !== false,
      });
      process.stdout.write(
        `rbee ${r.version} installed on ${alias} in ${formatDuration(r.ms)}: ${r.files} files, ${formatBytes(r.bytes)} (${formatBytes(r.sentBytes)} sent)\n` +
          `${r.stoppedHive ? "its hive was stopped for the install; start it again" : "start its hive"} with \`rbee hive start ${alias}\`\n`,
      );
    });
  hive
    .command("uninstall")
    .argument("<alias>", "a machine from hives.conf")
    .description("stop that machine's hive and remove rbee from it (models and config stay unless --purge)")
    .option("--purge", "remove its rbee cache (models, logs) and config directory too")
    .action(async (alias: string, flags: { purge?: boolean }, cmd: Command) => {
      const h = remoteHive(configOf(cmd), alias);
      const said = await uninstallRemote({ hive: h, narrator: stderrNarrator(), purge: flags.purge === true });
      for (const line of said) process.stdout.write(`${alias}: ${line}\n`);
    });
  return hive;
}
