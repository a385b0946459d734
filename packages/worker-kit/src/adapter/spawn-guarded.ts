import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { constants } from "node:os";
import { LineSplitter } from "./log-lines.js";

/**
 * How an engine is tied to its adapter so that it dies with it, even when the adapter gets SIGKILL:
 * - `setpriv`: Linux. util-linux's `setpriv --pdeathsig SIGKILL -- <engine>` asks the kernel
 *   (prctl PR_SET_PDEATHSIG) to SIGKILL the engine when its parent dies, then execs the engine:
 *   the process the adapter spawned *is* the engine.
 * - `sh`: anywhere with a /bin/sh (macOS). A small shell guard starts the engine in the background,
 *   reports its pid, and keeps a watcher reading a pipe from the adapter; when the adapter dies,
 *   the pipe closes, the watcher reads EOF and SIGKILLs the engine. The guard reports the engine's
 *   exit status and exits.
 * - `none`: spawned directly (no guarantee; only when neither of the above exists).
 */
export type EngineGuard = "setpriv" | "sh" | "none";

const SETPRIV_PATHS = ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv", "/sbin/setpriv"];
let setprivFound: string | null | undefined;

/** The setpriv binary, when it exists here and knows --pdeathsig (util-linux ≥ 2.33). */
export function findSetpriv(): string | undefined {
  if (setprivFound === undefined) {
    setprivFound = null;
    if (process.platform === "linux") {
      for (const path of SETPRIV_PATHS) {
        if (!existsSync(path)) continue;
        try {
          const help = execFileSync(path, ["--help"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
          if (help.includes("--pdeathsig")) setprivFound = path;
        } catch {
          // a setpriv that cannot even print its help is not one to rely on
        }
        break;
      }
    }
  }
  return setprivFound ?? undefined;
}

/** The guard used when none is asked for: setpriv on Linux, else the shell guard, else none. */
export function defaultEngineGuard(): EngineGuard {
  if (findSetpriv()) return "setpriv";
  if (process.platform !== "win32" && existsSync("/bin/sh")) return "sh";
  return "none";
}

/**
 * The shell guard ($0 is its name, "$@" the engine and its arguments). fd 3 is a pipe to the adapter
 * for reports ("pid N", then "exit S"); stdin is the pipe whose EOF means the adapter is gone.
 * The engine and the watcher get stdin from /dev/null and lose fd 3, so that only the watcher holds
 * the guard pipe and only the guard writes reports.
 */
const SH_GUARD = [
  "exec 4<&0",
  '"$@" </dev/null 3>&- 4<&- &',
  "engine=$!",
  'echo "pid $engine" >&3',
  '( while read -r _; do :; done; kill -KILL "$engine" 2>/dev/null ) <&4 >/dev/null 2>&1 3>&- &',
  "watcher=$!",
  "exec 4<&- </dev/null",
  'wait "$engine"',
  "status=$?",
  'kill "$watcher" 2>/dev/null',
  'echo "exit $status" >&3',
  'exit "$status"',
].join("\n");

export interface GuardedChild {
  /** The process the adapter spawned: the engine itself (setpriv, none) or the shell guard. */
  child: ChildProcess;
  guard: EngineGuard;
  /** Resolves with the engine's own pid (for the shell guard, once the guard reported it). */
  enginePid: Promise<number>;
  /**
   * Resolves with how the engine ended. For the shell guard the status it reported is decoded
   * (128 + N is signal N); if the guard itself was killed, how the guard ended.
   */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function signalName(n: number): NodeJS.Signals | null {
  for (const [name, value] of Object.entries(constants.signals)) if (value === n) return name as NodeJS.Signals;
  return null;
}

/**
 * Spawns `binary args` so that it cannot outlive this process (see EngineGuard), with stdout and
 * stderr piped. `binary` should have passed checkEngineBinary.
 */
export function spawnGuarded(
  binary: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; guard?: EngineGuard } = {},
): GuardedChild {
  const guard = options.guard ?? defaultEngineGuard();
  // its own process group: a Ctrl-C in the adapter's terminal reaches the adapter, which stops the engine itself
  const base = { env: options.env ?? process.env, cwd: options.cwd, detached: true };
  if (guard === "setpriv" || guard === "none") {
    let command = binary;
    let argv = [...args];
    if (guard === "setpriv") {
      const setpriv = findSetpriv();
      if (!setpriv) throw new Error("setpriv with --pdeathsig is not available on this system");
      command = setpriv;
      argv = ["--pdeathsig", "SIGKILL", "--", binary, ...args];
    }
    const child = spawn(command, argv, { ...base, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      // "close": after the exit and after its output was read to the end (the log tail is complete)
      child.once("close", (code, signal) => resolve({ code, signal }));
      child.once("error", () => resolve({ code: null, signal: null }));
    });
    const enginePid =
      child.pid !== undefined
        ? Promise.resolve(child.pid)
        : new Promise<number>((_, reject) => child.once("error", reject));
    enginePid.catch(() => undefined);
    return { child, guard, enginePid, exited };
  }

  if (!existsSync("/bin/sh")) throw new Error("the shell guard needs /bin/sh, which this system lacks");
  const child = spawn("/bin/sh", ["-c", SH_GUARD, "rbee-engine-guard", binary, ...args], {
    ...base,
    stdio: ["pipe", "pipe", "pipe", "pipe"],
  });
  // the guard pipe: never written to, only held open; its EOF is the signal
  child.stdin?.on("error", () => undefined);
  let reportedExit: number | undefined;
  let resolvePid!: (pid: number) => void;
  let rejectPid!: (err: Error) => void;
  const enginePid = new Promise<number>((resolve, reject) => {
    resolvePid = resolve;
    rejectPid = reject;
  });
  enginePid.catch(() => undefined);
  const reports = child.stdio[3] as NodeJS.ReadableStream | null;
  const lines = new LineSplitter((line) => {
    const pid = /^pid (\d+)$/.exec(line);
    if (pid) resolvePid(Number(pid[1]));
    const exit = /^exit (\d+)$/.exec(line);
    if (exit) reportedExit = Number(exit[1]);
  });
  reports?.on("data", (d: Buffer) => lines.push(d));
  reports?.on("error", () => undefined);
  // the guard's exit, its output and its report pipe read to the end (the guard waited for the engine)
  const guardExit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal }));
    child.once("error", (err) => {
      rejectPid(err);
      resolve({ code: null, signal: null });
    });
  });
  const reportsEnd = new Promise<void>((resolve) => {
    if (!reports) resolve();
    reports?.once("end", resolve);
    reports?.once("close", resolve);
    reports?.once("error", () => resolve());
  });
  const exited = Promise.all([guardExit, reportsEnd]).then(([own]) => {
    lines.end();
    rejectPid(new Error("the engine guard exited before it reported the engine's pid"));
    if (reportedExit === undefined) return own;
    const signal = reportedExit > 128 ? signalName(reportedExit - 128) : null;
    return signal ? { code: null, signal } : { code: reportedExit, signal: null };
  });
  return { child, guard, enginePid, exited };
}
