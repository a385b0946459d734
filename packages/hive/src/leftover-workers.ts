import { join } from "node:path";
import { cachePaths, isPidAlive, silentLogger } from "@rbee/server-kit";
import { isWorkerProcess } from "./adopted-process.js";
import { WorkerRecords } from "./worker-records.js";

/** A worker that outlived its hive's stop, and how it ended. */
export interface LeftoverWorker {
  workerId: string;
  pid: number;
  how: "exited" | "SIGTERM" | "SIGKILL";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function gone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isPidAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
  return true;
}

/**
 * After a hive was stopped (`rbee down`, `rbee hive stop`): the workers its records still name
 * whose processes still run (the hive was killed before it could stop them, or it never got the
 * chance: frozen, crashed) are stopped here, SIGTERM then SIGKILL after `graceMs`, and their records
 * removed. Only processes that are those workers (their pid, and the worker id in their command
 * line or environment) are signalled. Resolves the workers it found running.
 */
export async function stopLeftoverWorkers(cacheDir: string, graceMs: number): Promise<LeftoverWorker[]> {
  const paths = cachePaths(cacheDir);
  const records = new WorkerRecords(join(paths.run, "workers"), silentLogger());
  const found: LeftoverWorker[] = [];
  for (const saved of records.load()) {
    const id = saved.spec.workerId;
    const pid = saved.pid;
    if (pid !== null && isWorkerProcess(pid, id)) {
      let how: LeftoverWorker["how"] = "SIGTERM";
      try {
        process.kill(pid, "SIGTERM");
      } catch {
        how = "exited";
      }
      if (!(await gone(pid, graceMs))) {
        how = "SIGKILL";
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
        await gone(pid, 5000);
      }
      found.push({ workerId: id, pid, how });
    }
    records.remove(id);
  }
  return found;
}
