import { type ChildProcess, spawn } from "node:child_process";
import { RBEE_BIN, REPO_ROOT } from "./paths.js";

const live = new Set<ChildHandle>();
process.once("exit", () => {
  for (const c of live) c.proc.kill("SIGKILL");
});

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A real child process with its output captured, so that a failing test can show what the
 * process said. Every handle is killed when the test process exits.
 */
export class ChildHandle {
  readonly proc: ChildProcess;
  readonly exited: Promise<ExitInfo>;
  #stdout = "";
  #stderr = "";
  #lineWaiters: Array<{ re: RegExp; resolve: (m: RegExpExecArray) => void }> = [];
  #exit: ExitInfo | undefined;

  constructor(
    readonly command: string,
    readonly args: readonly string[],
    options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
  ) {
    this.proc = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    live.add(this);
    this.proc.stdout?.setEncoding("utf8").on("data", (d: string) => this.#onData("out", d));
    this.proc.stderr?.setEncoding("utf8").on("data", (d: string) => this.#onData("err", d));
    this.exited = new Promise((resolve) => {
      this.proc.once("exit", (code, signal) => {
        this.#exit = { code, signal };
        live.delete(this);
        resolve(this.#exit);
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  /** The last lines of output, for error messages. */
  tail(lines = 30): string {
    const all = `${this.#stdout}\n${this.#stderr}`.split("\n").filter((l) => l.trim() !== "");
    return all.slice(-lines).join("\n");
  }

  /** Waits for an output line matching `re`; fails early, with the output, if the process exits. */
  async waitForLine(re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
    const existing = re.exec(`${this.#stdout}\n${this.#stderr}`);
    if (existing) return existing;
    let timer: NodeJS.Timeout | undefined;
    let waiter: { re: RegExp; resolve: (m: RegExpExecArray) => void } | undefined;
    try {
      return await Promise.race([
        new Promise<RegExpExecArray>((resolve) => {
          waiter = { re, resolve };
          this.#lineWaiters.push(waiter);
        }),
        this.exited.then((e) => {
          throw new Error(
            `${this.describe()} exited (code ${e.code}, signal ${e.signal}) before printing ${re}:\n${this.tail()}`,
          );
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${this.describe()} did not print ${re} within ${timeoutMs} ms:\n${this.tail()}`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (waiter) this.#lineWaiters.splice(this.#lineWaiters.indexOf(waiter), 1);
    }
  }

  /** Waits for the process to exit; throws with its output if it takes longer than `timeoutMs`. */
  async waitForExit(timeoutMs = 30_000): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${this.describe()} did not exit within ${timeoutMs} ms:\n${this.tail()}`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (this.#exit === undefined) this.proc.kill(signal);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 10_000): Promise<ExitInfo> {
    if (this.#exit) return this.#exit;
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  describe(): string {
    const shown = this.args.slice(0, 4).join(" ");
    return `process ${this.pid} (${shown}${this.args.length > 4 ? " ..." : ""})`;
  }

  #onData(stream: "out" | "err", data: string): void {
    if (stream === "out") this.#stdout += data;
    else this.#stderr += data;
    if (this.#lineWaiters.length === 0) return;
    const all = `${this.#stdout}\n${this.#stderr}`;
    for (const w of this.#lineWaiters.slice()) {
      const m = w.re.exec(all);
      if (m) w.resolve(m);
    }
  }
}

/** Runs the real `rbee` CLI as a child process. */
export function startRbee(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): ChildHandle {
  return new ChildHandle(process.execPath, [RBEE_BIN, ...args], options);
}

/** Runs `rbee` to completion and returns its exit code and output. */
export async function runRbee(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  const child = startRbee(args, options);
  if (options.input !== undefined) child.proc.stdin?.end(options.input);
  else child.proc.stdin?.end();
  const exit = await child.waitForExit(options.timeoutMs ?? 60_000).catch(async (err: unknown) => {
    await child.stop(1000);
    throw err;
  });
  return { ...exit, stdout: child.stdout, stderr: child.stderr };
}
