import { readFileSync } from "node:fs";
import { isPidAlive, sendRequest } from "@rbee/server-kit";

/** The NUL-separated strings of /proc/<pid>/<file>, or undefined when it cannot be read. */
function procStrings(pid: number, file: "cmdline" | "environ"): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8").split("\0");
  } catch {
    return undefined;
  }
}

/**
 * Whether the pid still looks like an rbee worker, before the hive signals a process it did not
 * start (a pid can be reused). Linux: the command line mentions "worker", or the hive gave it a
 * worker id (RBEE_WORKER_ID, how workers of every type are launched); elsewhere: assumed.
 */
export function looksLikeWorker(pid: number): boolean {
  if (process.platform !== "linux") return true;
  if (procStrings(pid, "cmdline")?.join(" ").includes("worker")) return true;
  return procStrings(pid, "environ")?.some((e) => e.startsWith("RBEE_WORKER_ID=")) === true;
}

/**
 * Whether the pid is the worker `workerId` (its command line or the environment its hive gave it
 * names it; a spare worker process that became it names it in its title), before a hive takes a remembered worker back after a restart. Linux: read from /proc;
 * elsewhere: assumed.
 */
export function isWorkerProcess(pid: number, workerId: string): boolean {
  if (!isPidAlive(pid)) return false;
  if (process.platform !== "linux") return true;
  // a spare worker (`rbee worker warm`) got its arguments on stdin and shows them as its title: one string
  const args = (procStrings(pid, "cmdline") ?? []).flatMap((a) => a.split(" "));
  if (args.some((a, i) => a === `--worker-id=${workerId}` || (a === "--worker-id" && args[i + 1] === workerId)))
    return true;
  return procStrings(pid, "environ")?.includes(`RBEE_WORKER_ID=${workerId}`) === true;
}

/**
 * Stops a worker the hive adopted (it has no child handle for it): POST <url>/v1/shutdown with the
 * cluster token, wait for the pid to go, then SIGKILL after `graceMs` as the fallback.
 * Resolves how it ended, in words.
 */
export async function stopAdoptedProcess(
  url: string,
  pid: number | null,
  token: string,
  graceMs: number,
): Promise<string> {
  let asked = false;
  try {
    const res = await sendRequest(`${url}/v1/shutdown`, { method: "POST", body: {}, token, timeoutMs: 2000 });
    res.resume();
    asked = (res.statusCode ?? 500) < 300;
  } catch {
    // unreachable: fall back to the pid
  }
  if (pid === null) return asked ? "asked to shut down" : "could not be reached";
  if (!asked && isPidAlive(pid) && looksLikeWorker(pid)) process.kill(pid, "SIGTERM");
  const deadline = Date.now() + graceMs;
  while (isPidAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (!isPidAlive(pid)) return asked ? "shut down on request" : "exited after SIGTERM";
  if (looksLikeWorker(pid)) process.kill(pid, "SIGKILL");
  return "killed by SIGKILL after the grace period";
}
