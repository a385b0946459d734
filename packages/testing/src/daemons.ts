import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ChildHandle } from "./child.js";
import { RBEE_BIN, REPO_ROOT, tempRbeeDirs } from "./paths.js";

export interface QueenProcess {
  child: ChildHandle;
  url: string;
  token: string;
  env: NodeJS.ProcessEnv;
  root: string;
}

/**
 * The real `rbee queen start --foreground` as a child process, on `port` (0: a free one), in fresh
 * temp dirs or in `dirs` (a queen restarted on the same config keeps its keys and minimums), with
 * the cluster token it created. `env` is added to the queen's environment (e.g.
 * RBEE_HEARTBEAT_INTERVAL_MS); `nodeArgs` go to node itself (e.g. --cpu-prof to profile the queen).
 */
export async function startQueenProcess(
  label: string,
  env: NodeJS.ProcessEnv = {},
  nodeArgs: string[] = [],
  o: { port?: number; dirs?: ReturnType<typeof tempRbeeDirs> } = {},
): Promise<QueenProcess> {
  const dirs = o.dirs ?? tempRbeeDirs(label);
  const child = new ChildHandle(
    process.execPath,
    [...nodeArgs, RBEE_BIN, "queen", "start", "--foreground", "--port", String(o.port ?? 0)],
    { env: { ...dirs.env, RBEE_LOG_LEVEL: "info", ...env } },
  );
  try {
    const ready = await child.waitForLine(/^\{.*"msg":"queen ready".*\}$/m, 60_000);
    const url = (JSON.parse(ready[0]) as { url: string }).url;
    const token = readFileSync(join(dirs.configDir, "cluster-token"), "utf8").trim();
    return { child, url, token, env: dirs.env, root: dirs.root };
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
}

const groups = new Set<HiveGroup>();
process.once("exit", () => {
  for (const g of groups) g.kill("SIGKILL");
});

/**
 * A hive as its own process group (`rbee hive start --foreground`, and the workers it spawns), so
 * that SIGKILL to the group takes all of them at once, as when a machine dies. `args` are added to
 * the hive's command line (e.g. `--models-dir`, `--advertise-url`).
 */
export class HiveGroup {
  readonly proc: ChildProcess;
  #out = "";

  constructor(
    readonly id: string,
    readonly port: number,
    env: NodeJS.ProcessEnv,
    args: readonly string[] = [],
  ) {
    this.proc = spawn(
      process.execPath,
      [RBEE_BIN, "hive", "start", "--foreground", "--port", String(port), "--hive-id", id, ...args],
      { cwd: REPO_ROOT, env: { ...process.env, ...env }, detached: true, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.proc.stdout?.setEncoding("utf8").on("data", (d: string) => this.#keep(d));
    this.proc.stderr?.setEncoding("utf8").on("data", (d: string) => this.#keep(d));
    groups.add(this);
    this.proc.once("exit", () => groups.delete(this));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.proc.pid ?? -1;
  }

  /** Whether the hive process itself (not its group) has exited. */
  get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  /** Every process of the group. */
  kill(signal: NodeJS.Signals): void {
    try {
      process.kill(-(this.proc.pid as number), signal);
    } catch {
      // already gone
    }
  }

  /** Resolves once the hive has said it is ready; fails with its output if it exits first. */
  async ready(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#out.includes('"msg":"hive ready"')) {
      if (this.exited) throw new Error(`hive ${this.id} exited before it was ready:\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`hive ${this.id} not ready within ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM to the group (the hive stops its workers), SIGKILL after a grace period. */
  async stop(graceMs = 15_000): Promise<void> {
    if (this.exited) return this.kill("SIGKILL");
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
    this.kill("SIGKILL"); // workers that outlived their hive
  }

  tail(lines = 15): string {
    return this.#out.split("\n").slice(-lines).join("\n");
  }

  #keep(d: string): void {
    this.#out = (this.#out + d).slice(-20_000);
  }
}
