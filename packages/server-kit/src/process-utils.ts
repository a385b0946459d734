import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/**
 * True while a process with this pid exists (signal 0 probes without signalling). A zombie (exited,
 * not reaped by its parent: containers whose init does not reap) counts as gone.
 */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  if (process.platform !== "linux") return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.charAt(stat.lastIndexOf(")") + 2) !== "Z";
  } catch {
    return false;
  }
}

/** A port that was free a moment ago on `host` (bind port 0, read it, close). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True for an address that listens on every interface (0.0.0.0, ::, *): a bind open to every network. */
export function isWildcardHost(host: string): boolean {
  const h = host
    .trim()
    .replace(/^\[|\]$/g, "")
    .toLowerCase();
  return ["", "0.0.0.0", "::", "*", "0:0:0:0:0:0:0:0"].includes(h);
}
