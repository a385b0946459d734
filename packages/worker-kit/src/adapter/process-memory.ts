import { readFileSync } from "node:fs";

/**
 * Resident memory of a process in bytes (VmRSS of /proc/<pid>/status on Linux); 0 where that cannot
 * be read (another system, or the process is gone).
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
