import { closeSync, mkdirSync, openSync, renameSync, statSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";

/** A worker's log is moved to `<id>.log.1` when it is larger than this at a (re)start. */
export const WORKER_LOG_ROTATE_BYTES = 10 * 1024 * 1024;

/** `<logsDir>/workers/<worker-id>.log`; the id is a SafeId, so this stays under logsDir. */
export function workerLogPath(logsDir: string, workerId: string): string {
  return join(logsDir, "workers", `${workerId}.log`);
}

/**
 * Opens a worker's log for appending (the child writes to it directly, so its output survives the
 * hive), rotating a large one first, and writes one line that says what is being started.
 * The caller closes the descriptor once the child has it.
 */
export function openWorkerLog(path: string, startLine: Record<string, unknown>): number {
  mkdirSync(join(path, ".."), { recursive: true });
  try {
    if (statSync(path).size > WORKER_LOG_ROTATE_BYTES) renameSync(path, `${path}.1`);
  } catch {
    // no log yet
  }
  const fd = openSync(path, "a", 0o644);
  try {
    const line = { level: "info", time: new Date().toISOString(), service: "hive", ...startLine };
    writeSync(fd, `${JSON.stringify(line)}\n`);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return fd;
}

/** The last `count` lines of a file (fewer if it has fewer); [] when it does not exist. */
export async function readLastLines(path: string, count: number): Promise<string[]> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "r");
  } catch {
    return [];
  }
  try {
    const size = (await handle.stat()).size;
    const chunkSize = 64 * 1024;
    let position = size;
    let text = "";
    let newlines = 0;
    while (position > 0 && newlines <= count) {
      const length = Math.min(chunkSize, position);
      position -= length;
      const buf = Buffer.alloc(length);
      await handle.read(buf, 0, length, position);
      const chunk = buf.toString("utf8");
      for (const ch of chunk) if (ch === "\n") newlines++;
      text = chunk + text;
    }
    const lines = text.split("\n").filter((l) => l.trim() !== "");
    return lines.slice(-count);
  } finally {
    await handle.close();
  }
}

/** A worker's log line for the hive's own readiness polls (GET /health), which say nothing about the worker. */
export function isHealthPollLine(line: string): boolean {
  return line.startsWith("{") && line.includes('"msg":"request"') && line.includes('"path":"/health"');
}

/**
 * A log line as a person reads it in an error message: a JSON log line becomes
 * `<level>: <msg>` plus what explains it (an error's message, a status change, a request's outcome);
 * other lines stay as they are. Long lines are cut.
 */
export function formatLogLine(line: string, maxLength = 400): string {
  let out = line;
  if (line.startsWith("{")) {
    try {
      const entry = JSON.parse(line) as Record<string, unknown> & { err?: { message?: unknown } };
      if (typeof entry.msg === "string") out = `${String(entry.level ?? "log")}: ${entry.msg}${detail(entry)}`;
    } catch {
      // not JSON after all
    }
  }
  return out.length > maxLength ? `${out.slice(0, maxLength)}…` : out;
}

function detail(entry: Record<string, unknown> & { err?: { message?: unknown } }): string {
  if (typeof entry.err?.message === "string") return `: ${entry.err.message}`;
  if (entry.from !== undefined && entry.to !== undefined) return ` ${String(entry.from)} → ${String(entry.to)}`;
  if (entry.method !== undefined && entry.path !== undefined) {
    return ` ${String(entry.method)} ${String(entry.path)} ${String(entry.status ?? "")}`.trimEnd();
  }
  return "";
}
