import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ChildHandle, RBEE_BIN, tempRbeeDirs } from "@rbee/testing";

/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (Linux only). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // the command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLK_TCK;
}

/** Resident memory of a process in bytes, from /proc/<pid>/status. */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

export interface QueenProcess {
  child: ChildHandle;
  url: string;
  token: string;
  env: NodeJS.ProcessEnv;
  root: string;
}

/**
 * The real `rbee queen start --foreground` as a child process on a free port, in fresh temp dirs,
 * with the cluster token it created. `env` is added to the queen's environment (e.g.
 * RBEE_HEARTBEAT_INTERVAL_MS); `nodeArgs` go to node itself (e.g. --cpu-prof to profile the queen).
 */
export async function startQueenProcess(
  label: string,
  env: NodeJS.ProcessEnv = {},
  nodeArgs: string[] = [],
): Promise<QueenProcess> {
  const dirs = tempRbeeDirs(label);
  const child = new ChildHandle(
    process.execPath,
    [...nodeArgs, RBEE_BIN, "queen", "start", "--foreground", "--port", "0"],
    { env: { ...dirs.env, RBEE_LOG_LEVEL: "info", ...env } },
  );
  const ready = await child.waitForLine(/^\{.*"msg":"queen ready".*\}$/m, 60_000);
  const url = (JSON.parse(ready[0]) as { url: string }).url;
  const token = readFileSync(join(dirs.configDir, "cluster-token"), "utf8").trim();
  return { child, url, token, env: dirs.env, root: dirs.root };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `n` formatted as a percentage with one decimal. */
export const pct = (n: number) => `${(n * 100).toFixed(1)} %`;

export const mib = (bytes: number) => Math.round(bytes / (1024 * 1024));
