import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";

/**
 * Resident memory of a process in bytes from VmRSS of /proc/<pid>/status (Linux); 0 where that
 * cannot be read (another system, or the process is gone). Cheap: fine on every heartbeat.
 */
export function processRss(pid: number | undefined): number {
  if (pid === undefined || process.platform !== "linux") return 0;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /^VmRSS:\s+(\d+)\s*kB/m.exec(status)?.[1];
    return kb === undefined ? 0 : Number(kb) * 1024;
  } catch {
    return 0;
  }
}

/**
 * Resident memory of a process in bytes, on any Unix: /proc on Linux, else `ps -o rss=` (macOS, the
 * BSDs). 0 when it cannot be read. `via` forces one way (tests). Costs a process on macOS: call it
 * from a poll, not from a heartbeat.
 */
export function processRssAnywhere(pid: number | undefined, via?: "proc" | "ps"): Promise<number> {
  if (pid === undefined) return Promise.resolve(0);
  const how = via ?? (process.platform === "linux" ? "proc" : process.platform === "win32" ? undefined : "ps");
  if (how === "proc") return Promise.resolve(processRss(pid));
  if (how !== "ps") return Promise.resolve(0);
  return new Promise((resolve) => {
    execFile("ps", ["-o", "rss=", "-p", String(pid)], { timeout: 2000 }, (err, stdout) => {
      const kb = Number(String(stdout).trim());
      resolve(err || !Number.isFinite(kb) ? 0 : kb * 1024);
    });
  });
}
