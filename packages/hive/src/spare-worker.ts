import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { LaunchCommand } from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import { openWorkerLog } from "./worker-log-file.js";

/** A new spare waits this long after one was taken, so that it does not slow the model load of the worker it became. */
const REFILL_DELAY_MS = 3000;

export interface SpareWorkerOptions {
  /** The node binary and the rbee CLI entry (as for every worker). */
  node: string;
  rbeeBin: string;
  /** The environment every worker gets (with the cluster token). */
  env: NodeJS.ProcessEnv;
  logsDir: string;
  log: Logger;
  /** A spare started before the hive (`rbee hive start` starts one before it loads the hive): the first one. */
  first?: StartedSpare;
}

/** A spare worker process and its log. */
export interface StartedSpare {
  child: ChildProcess;
  logFile: string;
}

/** Starts a spare worker process (`rbee worker warm`), its output in `logFile`. */
export function spawnSpare(o: {
  node: string;
  rbeeBin: string;
  env: NodeJS.ProcessEnv;
  logFile: string;
}): ChildProcess {
  const fd = openWorkerLog(o.logFile, { msg: "hive: starting a spare worker" });
  try {
    return spawn(o.node, [o.rbeeBin, "worker", "warm"], { env: o.env, stdio: ["pipe", fd, fd], detached: false });
  } finally {
    closeSync(fd);
  }
}

/** Where a hive's spare number `count` logs until it becomes a worker. */
export function spareLogFile(logsDir: string, count: number, pid = process.pid): string {
  return join(logsDir, "workers", `.spare-${pid}-${count}.log`);
}

/**
 * One spare llm worker process (`rbee worker warm`), started ahead of need: by the time a model is
 * asked for, it has started Node, imported node-llama-cpp and loaded llama.cpp's CPU build (about
 * 1.5 s of a worker's start here), so that a worker placed on the CPU only has to load its model.
 * {@link take} hands it the arguments the worker would have been started with and gives its process
 * to the caller; another spare is started a few seconds later. A spare exits by itself when its
 * stdin closes, so a hive that dies leaves none behind.
 */
export class SpareWorker {
  readonly #o: SpareWorkerOptions;
  #spare: { child: ChildProcess; logFile: string } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #count = 0;
  /** Spares that exited before they were needed; after three no more are started. */
  #early = 0;

  constructor(options: SpareWorkerOptions) {
    this.#o = options;
  }

  /** The waiting spare's pid (undefined when none waits): a process the hive knows, though it serves nothing yet. */
  get pid(): number | undefined {
    return this.#spare?.child.pid;
  }

  /** Starts the first spare (or takes the one started before the hive). */
  start(): void {
    const first = this.#o.first;
    if (first === undefined) {
      this.#refill();
      return;
    }
    this.#count++;
    this.#adopt(first.child, first.logFile);
  }

  /**
   * The spare's process, now running as the worker `launch` describes, when it can be: rbee's own
   * llm worker on the CPU with the workers' common environment, whose log does not exist yet (a
   * restart appends to the worker's log, and starts a process of its own). The spare's log becomes
   * the worker's log. Undefined otherwise, or when no spare is ready.
   */
  take(launch: LaunchCommand, logFile: string): ChildProcess | undefined {
    const spare = this.#spare;
    if (spare === undefined || this.#closed || !this.#fits(launch) || existsSync(logFile)) return undefined;
    this.#spare = undefined;
    const { child } = spare;
    if (child.exitCode !== null || child.signalCode !== null || child.stdin === null) {
      this.#refillSoon();
      return undefined;
    }
    try {
      renameSync(spare.logFile, logFile);
    } catch (err) {
      this.#o.log.warn({ err, pid: child.pid }, "could not move a spare worker's log; starting a worker instead");
      child.kill("SIGTERM");
      this.#refillSoon();
      return undefined;
    }
    child.stdin.end(`${JSON.stringify(launch.args.slice(2))}\n`);
    this.#refillSoon();
    return child;
  }

  /** Stops the spare and starts no other. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    const spare = this.#spare;
    this.#spare = undefined;
    if (spare === undefined) return;
    spare.child.stdin?.end();
    spare.child.kill("SIGTERM");
    rmSync(spare.logFile, { force: true });
  }

  #fits(launch: LaunchCommand): boolean {
    const [bin, worker, serve, type] = launch.args;
    return (
      launch.command === this.#o.node &&
      launch.env === undefined &&
      bin === this.#o.rbeeBin &&
      worker === "worker" &&
      serve === "serve" &&
      type === "llm" &&
      launch.args.includes("--device=cpu")
    );
  }

  #refillSoon(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#refill(), REFILL_DELAY_MS);
    this.#timer.unref();
  }

  #refill(): void {
    if (this.#closed || this.#spare !== undefined) return;
    const logFile = spareLogFile(this.#o.logsDir, ++this.#count);
    const { node, rbeeBin, env } = this.#o;
    this.#adopt(spawnSpare({ node, rbeeBin, env, logFile }), logFile);
  }

  #adopt(child: ChildProcess, logFile: string): void {
    child.stdin?.on("error", () => {}); // a spare that died: its exit is what counts
    child.once("error", (err) => this.#o.log.warn({ err: err.message }, "could not start a spare worker"));
    child.once("exit", (code, signal) => {
      if (this.#spare?.child !== child) return;
      this.#spare = undefined;
      if (this.#closed) return rmSync(logFile, { force: true });
      const giveUp = ++this.#early >= 3;
      this.#o.log.warn(
        { code, signal, log: logFile },
        giveUp
          ? "spare workers keep exiting; workers start without one"
          : "a spare worker exited early; starting another later",
      );
      if (!giveUp) this.#refillSoon();
    });
    this.#spare = { child, logFile };
  }
}
