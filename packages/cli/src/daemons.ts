import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseJson } from "@rbee/contract/light";
import { isPidAlive, readBody, sendRequest, TlsTrustError } from "@rbee/server-kit/client";

export { freePort } from "@rbee/server-kit/client";

import { CliError } from "./exit-codes.js";

/**
 * The daemons `rbee` runs in the background on this machine (the queen and the hive): their pid
 * files (`<cache>/run/<name>.pid`), their logs (`<cache>/logs/<name>.log`), starting them detached
 * and waiting for their /health, stopping them with SIGTERM then SIGKILL.
 */
export type DaemonName = "queen" | "hive";

/** What a pid file holds. */
export interface DaemonRecord {
  pid: number;
  /** Where the daemon answers (its /health). */
  url: string;
  started_at: string;
}

export interface DaemonFiles {
  pidFile: string;
  logFile: string;
}

export function daemonFiles(cacheDir: string, name: DaemonName): DaemonFiles {
  return { pidFile: join(cacheDir, "run", `${name}.pid`), logFile: join(cacheDir, "logs", `${name}.log`) };
}

/** The `rbee` script this process runs (bin/rbee.js), which background daemons are started with. */
export function rbeeBin(): string {
  return fileURLToPath(new URL("../bin/rbee.js", import.meta.url));
}

/** The pid file's record; a bare pid (a file written by hand) is accepted too. Undefined when absent or garbled. */
export function readDaemonRecord(file: string): DaemonRecord | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
  if (/^\d+$/.test(text)) return { pid: Number(text), url: "", started_at: "" };
  const parsed = parseJson(text);
  if (!parsed.ok || typeof parsed.value !== "object" || parsed.value === null) return undefined;
  const r = parsed.value as Partial<DaemonRecord>;
  if (typeof r.pid !== "number" || !Number.isInteger(r.pid) || r.pid <= 0) return undefined;
  return {
    pid: r.pid,
    url: typeof r.url === "string" ? r.url : "",
    started_at: typeof r.started_at === "string" ? r.started_at : "",
  };
}

export function writeDaemonRecord(file: string, record: DaemonRecord): void {
  mkdirSync(join(file, ".."), { recursive: true });
  writeFileSync(file, `${JSON.stringify(record)}\n`);
}

/** Removes the pid file, but only while it still names `pid` (when given). */
export function removeDaemonRecord(file: string, pid?: number): void {
  if (pid !== undefined && readDaemonRecord(file)?.pid !== pid) return;
  rmSync(file, { force: true });
}

/** Whether a live pid still is an rbee daemon of this name (a pid can be reused). Linux checks; elsewhere assumed. */
function looksLikeDaemon(pid: number, name: DaemonName): boolean {
  if (process.platform !== "linux") return true;
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return args.some((a) => a.includes("rbee")) && args.includes(name);
  } catch {
    return false;
  }
}

/** The record of the daemon if its process runs; a stale pid file (the process is gone) is removed. */
export function liveDaemon(cacheDir: string, name: DaemonName): DaemonRecord | undefined {
  const { pidFile } = daemonFiles(cacheDir, name);
  const record = readDaemonRecord(pidFile);
  if (!record) return undefined;
  if (isPidAlive(record.pid) && looksLikeDaemon(record.pid, name)) return record;
  removeDaemonRecord(pidFile, record.pid);
  return undefined;
}

/**
 * GET <url>/health: its JSON body when it answers 2xx, undefined when unreachable or failing.
 * A certificate this CLI does not trust is thrown (TlsTrustError): waiting will not change it.
 */
export async function probeHealth(url: string, timeoutMs = 1500): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await sendRequest(`${url}/health`, { timeoutMs });
    const text = await readBody(res);
    if ((res.statusCode ?? 500) >= 300) return undefined;
    const parsed = parseJson(text);
    return parsed.ok && typeof parsed.value === "object" && parsed.value !== null
      ? (parsed.value as Record<string, unknown>)
      : {};
  } catch (err) {
    if (err instanceof TlsTrustError) throw err;
    return undefined;
  }
}

/** The URL a daemon listening on host:port is reached at from this machine (https:// when it serves TLS). */
export function localUrl(host: string, port: number, secure = false): string {
  const scheme = secure ? "https" : "http";
  if (host === "0.0.0.0" || host === "") return `${scheme}://127.0.0.1:${port}`;
  if (host === "::") return `${scheme}://[::1]:${port}`;
  return host.includes(":") ? `${scheme}://[${host}]:${port}` : `${scheme}://${host}:${port}`;
}

/** The last non-empty lines of a log file since the last start marker (reads its tail only). */
export function logTail(file: string, lines = 20): string[] {
  let text = "";
  try {
    const size = statSync(file).size;
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    const fd = openSync(file, "r");
    try {
      readSync(fd, buffer, 0, length, size - length);
    } finally {
      closeSync(fd);
    }
    text = buffer.toString("utf8");
  } catch {
    return [];
  }
  const all = text.split(/\r?\n/);
  const marker = all.findLastIndex((l) => l.startsWith(START_MARKER));
  return all
    .slice(marker + 1)
    .filter((l) => l.trim() !== "")
    .slice(-lines);
}

const START_MARKER = "--- rbee ";

/** The most telling line of a daemon's log: a JSON log line is reduced to its message and error. */
export function describeLogLine(line: string): string {
  const parsed = parseJson(line);
  if (parsed.ok && typeof parsed.value === "object" && parsed.value !== null) {
    const v = parsed.value as { msg?: unknown; err?: unknown; error?: unknown };
    const err = v.err ?? v.error;
    const detail =
      typeof err === "string"
        ? err
        : typeof (err as { message?: unknown })?.message === "string"
          ? (err as { message: string }).message
          : "";
    return [typeof v.msg === "string" ? v.msg : line, detail].filter((s) => s !== "").join(": ");
  }
  return line.replace(/^rbee( \w+)?: /, "");
}

export interface BackgroundStart {
  name: DaemonName;
  /** Where it will answer /health. */
  url: string;
  /** Arguments after the rbee script: `["queen", "start", "--foreground", "--port", "7833"]`. */
  args: string[];
  cacheDir: string;
  timeoutMs?: number;
}

/**
 * Starts `rbee <args>` detached, its output appended to its log, writes its pid file, and waits
 * until it answers /health. Fails early, with the log's telling line, when the process exits first;
 * a process that never answers is killed after `timeoutMs` (default 30 s).
 */
export async function startInBackground(o: BackgroundStart): Promise<DaemonRecord> {
  const { pidFile, logFile } = daemonFiles(o.cacheDir, o.name);
  mkdirSync(join(logFile, ".."), { recursive: true });
  const log = openSync(logFile, "a");
  let child: ReturnType<typeof spawn>;
  try {
    writeFileSync(log, `${START_MARKER}${o.args.join(" ")} at ${new Date().toISOString()} ---\n`);
    child = spawn(process.execPath, [rbeeBin(), ...o.args], {
      detached: true,
      stdio: ["ignore", log, log],
      cwd: homedir(),
      env: process.env,
    });
  } finally {
    closeSync(log);
  }
  const pid = child.pid;
  if (pid === undefined) throw new CliError(`could not start the ${o.name} (${process.execPath} did not run)`);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.once("exit", (code, signal) => {
    exited = { code, signal };
  });
  child.unref();
  const record: DaemonRecord = { pid, url: o.url, started_at: new Date().toISOString() };
  writeDaemonRecord(pidFile, record);
  const startedAt = Date.now();
  const deadline = startedAt + (o.timeoutMs ?? 30_000);
  for (;;) {
    if (exited) {
      removeDaemonRecord(pidFile, pid);
      const how = exited.signal ? `was killed by ${exited.signal}` : `exited with code ${exited.code}`;
      const last = logTail(logFile, 1)[0];
      throw new CliError(
        `the ${o.name} ${how} before it answered ${o.url}/health${last ? `: ${describeLogLine(last)}` : ""} (log: ${logFile})`,
      );
    }
    try {
      if (await probeHealth(o.url, 1000)) return record;
    } catch (err) {
      if (!(err instanceof TlsTrustError)) throw err;
      throw new CliError(`the ${o.name} runs (pid ${pid}, log ${logFile}), but ${err.message}`);
    }
    if (Date.now() > deadline) {
      if (isPidAlive(pid)) process.kill(pid, "SIGKILL");
      removeDaemonRecord(pidFile, pid);
      throw new CliError(
        `the ${o.name} did not answer ${o.url}/health within ${Math.round((o.timeoutMs ?? 30_000) / 1000)} s and was stopped (log: ${logFile})`,
      );
    }
    // often at first (a daemon is up within a second), then every 100 ms
    await new Promise((r) => setTimeout(r, Date.now() - startedAt < 1000 ? 25 : 100));
  }
}

/**
 * For `start --foreground`: refuses when another daemon of this name runs, else writes this
 * process's pid file and removes it when the process exits.
 */
export function claimPidFile(cacheDir: string, name: DaemonName, url: string): void {
  const { pidFile } = daemonFiles(cacheDir, name);
  const existing = liveDaemon(cacheDir, name);
  if (existing && existing.pid !== process.pid) {
    throw new CliError(
      `a ${name} is already running (pid ${existing.pid}${existing.url ? `, ${existing.url}` : ""}); stop it with \`rbee ${name} stop\``,
    );
  }
  writeDaemonRecord(pidFile, {
    pid: process.pid,
    url,
    started_at: existing?.started_at || new Date().toISOString(),
  });
  process.once("exit", () => removeDaemonRecord(pidFile, process.pid));
}

export interface StopOutcome {
  /** The pid that was stopped; undefined when none ran. */
  pid: number | undefined;
  /** True when it had to be killed with SIGKILL after `graceMs`. */
  killed: boolean;
}

/** Stops the daemon: SIGTERM, wait up to `graceMs`, then SIGKILL; removes its pid file. */
export async function stopDaemon(cacheDir: string, name: DaemonName, graceMs: number): Promise<StopOutcome> {
  const { pidFile } = daemonFiles(cacheDir, name);
  const record = liveDaemon(cacheDir, name);
  if (!record) return { pid: undefined, killed: false };
  const { pid } = record;
  const gone = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (isPidAlive(pid)) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return true;
  };
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    // it ended on its own meanwhile
  }
  let killed = false;
  if (!(await gone(graceMs))) {
    killed = true;
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
    if (!(await gone(5000))) throw new CliError(`the ${name} (pid ${pid}) did not exit even after SIGKILL`);
  }
  removeDaemonRecord(pidFile, pid);
  return { pid, killed };
}
