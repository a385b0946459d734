import { spawn } from "node:child_process";
import type { WriteStream } from "node:fs";

/** A build step (git, cmake) failed: its exit, and the last lines it printed. */
export class BuildStepError extends Error {
  constructor(
    readonly step: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly tail: readonly string[],
    readonly logPath: string,
  ) {
    super(
      `${step} failed (${exitCode !== null ? `exit code ${exitCode}` : `signal ${signal}`}); the last lines of its output:\n${tail.join("\n")}\nfull log: ${logPath}`,
    );
    this.name = "BuildStepError";
  }
}

/** The build was aborted (Ctrl+C): its processes were stopped, its work tree is kept for the next run. */
export class BuildAbortedError extends Error {
  constructor(readonly logPath?: string) {
    super("the build was interrupted; run it again to continue where it stopped");
    this.name = "BuildAbortedError";
  }
}

export interface RunLoggedOptions {
  /** The step's name in errors: "cmake --build". */
  step: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Every output line goes here (stdout and stderr interleaved as they come). */
  log: WriteStream;
  logPath: string;
  onLine?: (line: string) => void;
  signal?: AbortSignal;
  /** Lines kept for the error message. */
  tailLines?: number;
}

/** How long a stopped build may take to exit after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 3000;

/**
 * Runs one build command to its end in a process group of its own, its output copied to the log
 * and split into lines for `onLine`. Aborting kills the whole group (cmake, make and every compiler
 * it started): SIGTERM, then SIGKILL. Rejects with {@link BuildStepError} on failure.
 */
export function runLogged(cmd: string, args: readonly string[], o: RunLoggedOptions): Promise<void> {
  const tailMax = o.tailLines ?? 30;
  return new Promise<void>((resolve, reject) => {
    if (o.signal?.aborted) {
      reject(new BuildAbortedError(o.logPath));
      return;
    }
    o.log.write(`\n$ ${[cmd, ...args].join(" ")}    # in ${o.cwd}, ${new Date().toISOString()}\n`);
    const child = spawn(cmd, [...args], {
      cwd: o.cwd,
      env: o.env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: process.platform !== "win32",
    });
    const tail: string[] = [];
    const partial = { out: "", err: "" };
    const take = (which: "out" | "err", chunk: string, flush = false) => {
      o.log.write(chunk);
      const text = partial[which] + chunk;
      const lines = text.split(/\r?\n|\r/);
      partial[which] = flush ? "" : (lines.pop() ?? "");
      for (const line of lines) {
        if (line === "") continue;
        tail.push(line);
        if (tail.length > tailMax) tail.shift();
        o.onLine?.(line);
      }
    };
    child.stdout.setEncoding("utf8").on("data", (d: string) => take("out", d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => take("err", d));

    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined && process.platform !== "win32") process.kill(-child.pid, signal);
        else child.kill(signal);
      } catch {
        // already gone
      }
    };
    const onAbort = () => {
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS);
    };
    o.signal?.addEventListener("abort", onAbort, { once: true });
    // this process ending (an uncaught error, process.exit) must not leave compilers running
    const onExit = () => killGroup("SIGKILL");
    process.once("exit", onExit);

    child.once("error", (err) => {
      o.signal?.removeEventListener("abort", onAbort);
      process.off("exit", onExit);
      reject(new BuildStepError(o.step, null, null, [`could not start ${cmd}: ${err.message}`], o.logPath));
    });
    child.once("close", (code, signal) => {
      clearTimeout(killTimer);
      o.signal?.removeEventListener("abort", onAbort);
      process.off("exit", onExit);
      take("out", "", true);
      take("err", "", true);
      if (o.signal?.aborted) {
        killGroup("SIGKILL"); // grandchildren that outlived cmake
        reject(new BuildAbortedError(o.logPath));
      } else if (code === 0) resolve();
      else reject(new BuildStepError(o.step, code, signal, tail, o.logPath));
    });
  });
}
