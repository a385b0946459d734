import type { CliConfig } from "../config.js";
import { printJson } from "../context.js";
import { type DaemonName, daemonFiles, liveDaemon, probeHealth, stopDaemon } from "../daemons.js";
import { CliError, EXIT } from "../exit-codes.js";
import { formatDuration } from "../render/format.js";

/** What `rbee queen status` and `rbee hive status` report. */
export interface DaemonStatus {
  name: DaemonName;
  running: boolean;
  url: string;
  pid: number | null;
  version: string | null;
  started_at: string | null;
  uptime_ms: number | null;
  /** False when something answers at the URL that this rbee did not start (no pid file). */
  managed: boolean;
  pid_file: string;
  log_file: string;
  /** The rest of the /health answer (the hive's id, for one). */
  health: Record<string, unknown> | null;
}

/** The daemon's status: its pid file, and whether it answers /health at its URL (or `fallbackUrl`). */
export async function daemonStatus(config: CliConfig, name: DaemonName, fallbackUrl: string): Promise<DaemonStatus> {
  const record = liveDaemon(config.cacheDir, name);
  const url = record?.url || fallbackUrl;
  const health = (await probeHealth(url)) ?? null;
  const { pidFile, logFile } = daemonFiles(config.cacheDir, name);
  const started = record?.started_at ? Date.parse(record.started_at) : Number.NaN;
  return {
    name,
    running: health !== null,
    url,
    pid: record?.pid ?? null,
    version: typeof health?.version === "string" ? health.version : null,
    started_at: record?.started_at || null,
    uptime_ms: health && Number.isFinite(started) ? Date.now() - started : null,
    managed: record !== undefined,
    pid_file: pidFile,
    log_file: logFile,
    health,
  };
}

/** Prints a status (text or --json) and exits 3 when the daemon is not running, as `systemctl status` does. */
export function printDaemonStatus(s: DaemonStatus, json: boolean, extra: Array<[string, string]> = []): void {
  if (json) printJson(s);
  else {
    const state = s.running
      ? "running"
      : s.pid !== null
        ? `not answering (process ${s.pid} runs; look at its log)`
        : "not running";
    const rows: Array<[string, string]> = [
      ["url", s.url],
      ["pid", s.pid !== null ? String(s.pid) : s.running ? "unknown (not started by rbee on this machine)" : "-"],
    ];
    if (s.running) {
      rows.push(["version", s.version ?? "?"], ...extra);
      if (s.uptime_ms !== null) rows.push(["uptime", formatDuration(s.uptime_ms)]);
    }
    rows.push(["log", s.log_file]);
    const lines = [`${s.name}: ${state}`, ...rows.map(([k, v]) => `  ${k.padEnd(8)} ${v}`)];
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  if (!s.running) process.exitCode = EXIT.unavailable;
}

/** Stops the daemon and says so; not running is fine (exit 0), a stale pid file is removed silently. */
export async function stopAndReport(config: CliConfig, name: DaemonName, graceMs: number, url: string): Promise<void> {
  const outcome = await stopDaemon(config.cacheDir, name, graceMs);
  if (outcome.pid !== undefined) {
    process.stdout.write(
      `${name} stopped (pid ${outcome.pid}${outcome.killed ? `, killed after ${graceMs / 1000} s` : ""})\n`,
    );
    return;
  }
  if (await probeHealth(url)) {
    throw new CliError(
      `a ${name} answers at ${url} but was not started by rbee with this cache directory (${config.cacheDir}); stop it where it runs`,
    );
  }
  process.stdout.write(`${name} is not running\n`);
}
