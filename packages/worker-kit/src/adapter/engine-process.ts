import type { ChildProcess } from "node:child_process";
import { connect } from "node:net";
import type { Logger } from "@rbee/server-kit";
import { freePort, readBody, sendRequest } from "@rbee/server-kit";
import { checkEngineBinary } from "./check-binary.js";
import {
  describeExit,
  type EngineExit,
  EngineExitedError,
  EngineStartError,
  type EngineState,
} from "./engine-errors.js";
import { LineSplitter, LogTail } from "./log-lines.js";
import { type EngineGuard, spawnGuarded } from "./spawn-guarded.js";

export interface EngineProcessOptions {
  /** The engine's name in logs and errors: "llama-server". */
  name: string;
  /** Path of the engine's program. */
  binary: string;
  args: readonly string[];
  /** Variables added to the adapter's own environment for the engine. */
  env?: Record<string, string>;
  cwd?: string;
  /** What to do when the binary is missing or unusable: "build it with `rbee engine build llama.cpp`". */
  binaryHint: string;
  /**
   * The readiness probe: a GET of this URL that must answer 200, or for an engine that speaks no
   * HTTP (llama.cpp's RPC server) `tcp://host:port`, which must accept a connection.
   */
  readyUrl: string;
  /** Give up (and stop the engine) when it is not ready after this long. */
  startTimeoutMs: number;
  /** Between readiness probes; default 100 ms. */
  probeIntervalMs?: number;
  /** After SIGTERM, how long before SIGKILL; default 5 s. */
  stopGraceMs?: number;
  /** Lines of the engine's log kept for errors; default 40. */
  tailLines?: number;
  /** How the engine is tied to the adapter's life (default: the best this system has). */
  guard?: EngineGuard;
  /** Where the engine's output lines go (each as one log line with `engine` and `stream`). */
  log: Logger;
  /** Called once when the engine exits on its own after it was ready (not when stop() ended it). */
  onUnexpectedExit?: (error: EngineExitedError) => void;
}

/**
 * An engine (llama-server, vLLM, Ollama, ...) run as a child process of its adapter, with an explicit
 * state machine: idle → starting → ready → stopping → stopped, or failed.
 *
 * - `start()` spawns it tied to this process (see EngineGuard: no engine outlives its adapter, even
 *   on SIGKILL), copies its stdout and stderr line by line into the adapter's log, and waits for the
 *   readiness probe. It fails at once, with the exit code or signal and the log's last lines, when
 *   the engine exits while starting; it stops the engine and fails when the start timeout passes.
 * - `stop()` sends SIGTERM, then SIGKILL after the grace period; idempotent.
 * - An exit while ready is reported to `onUnexpectedExit`.
 */
export class EngineProcess {
  readonly name: string;
  readonly binary: string;
  #o: EngineProcessOptions;
  #state: EngineState = "idle";
  #tail: LogTail;
  #child: ChildProcess | undefined;
  #guard: EngineGuard | undefined;
  #pid: number | undefined;
  #exit: EngineExit | undefined;
  #exited: Promise<EngineExit> | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<EngineExit | undefined> | undefined;

  constructor(options: EngineProcessOptions) {
    this.#o = options;
    this.name = options.name;
    this.binary = options.binary;
    this.#tail = new LogTail(options.tailLines ?? 40);
  }

  get state(): EngineState {
    return this.#state;
  }

  /** The engine's own pid (not the guard's), once started. */
  get pid(): number | undefined {
    return this.#pid;
  }

  /** The pid of the process this adapter spawned: the engine itself, or the shell guard around it. */
  get spawnedPid(): number | undefined {
    return this.#child?.pid;
  }

  get guard(): EngineGuard | undefined {
    return this.#guard;
  }

  get exitInfo(): EngineExit | undefined {
    return this.#exit;
  }

  /** Resolves when the engine has exited (after start() was called). */
  get exited(): Promise<EngineExit> {
    return this.#exited ?? Promise.reject(new Error(`${this.name} was never started`));
  }

  /** The last lines the engine printed. */
  logTail(lines?: number): string[] {
    return this.#tail.lines(lines);
  }

  /** Starts the engine and resolves once its readiness probe answers 200. Call once. */
  start(signal?: AbortSignal): Promise<void> {
    this.#starting ??= this.#start(signal);
    return this.#starting;
  }

  async #start(signal: AbortSignal | undefined): Promise<void> {
    if (this.#state !== "idle") throw new Error(`${this.name} cannot start from state ${this.#state}`);
    checkEngineBinary(this.binary, this.#o.binaryHint);
    this.#state = "starting";
    const log = this.#o.log;
    let spawned: ReturnType<typeof spawnGuarded>;
    try {
      spawned = spawnGuarded(this.binary, this.#o.args, {
        env: this.#o.env ? { ...process.env, ...this.#o.env } : undefined,
        cwd: this.#o.cwd,
        guard: this.#o.guard,
      });
    } catch (err) {
      this.#state = "failed";
      throw new EngineStartError(
        `cannot start ${this.name} (${this.binary}): ${(err as Error).message}`,
        this.#facts(),
      );
    }
    this.#child = spawned.child;
    this.#guard = spawned.guard;
    this.#pipe(spawned.child.stdout, "stdout");
    this.#pipe(spawned.child.stderr, "stderr");
    let spawnError: Error | undefined;
    spawned.child.once("error", (err) => {
      spawnError = err;
    });
    this.#exited = spawned.exited.then((exit) => {
      this.#exit = exit;
      const was = this.#state;
      this.#state = was === "stopping" || was === "stopped" ? "stopped" : "failed";
      log.info({ engine: this.name, engine_pid: this.#pid, ...exit, state: was }, `${this.name} exited`);
      if (was === "ready") {
        const error = new EngineExitedError(this.name, this.binary, exit, this.#tail.lines(20));
        this.#o.onUnexpectedExit?.(error);
      }
      return exit;
    });
    try {
      this.#pid = await Promise.race([spawned.enginePid, this.#exited.then(() => undefined)]);
    } catch (err) {
      spawnError ??= err as Error;
    }
    if (this.#pid === undefined) {
      const exit = await this.#exited;
      throw new EngineStartError(
        `cannot start ${this.name} (${this.binary}): ${spawnError?.message ?? describeExit(exit)}`,
        this.#facts(),
      );
    }
    log.info(
      { engine: this.name, engine_pid: this.#pid, guard: this.#guard, binary: this.binary, args: this.#o.args },
      `${this.name} started`,
    );
    const t0 = performance.now();
    try {
      await this.#waitReady(signal);
    } catch (err) {
      await this.stop();
      this.#state = "failed";
      throw err;
    }
    this.#state = "ready";
    log.info(
      { engine: this.name, engine_pid: this.#pid, ready_ms: Math.round(performance.now() - t0) },
      `${this.name} ready`,
    );
  }

  async #waitReady(signal: AbortSignal | undefined): Promise<void> {
    const deadline = performance.now() + this.#o.startTimeoutMs;
    const interval = this.#o.probeIntervalMs ?? 100;
    const exited = this.exited;
    for (;;) {
      if (this.#exit !== undefined) {
        throw new EngineStartError(
          `${this.name} (${this.binary}) ${describeExit(this.#exit)} while starting`,
          this.#facts("starting"),
        );
      }
      if (signal?.aborted) {
        throw new EngineStartError(
          `${this.name} was stopped while starting: ${String((signal.reason as Error)?.message ?? signal.reason)}`,
          this.#facts(),
        );
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        await this.stop();
        throw new EngineStartError(
          `${this.name} (${this.binary}, pid ${this.#pid}) was not ready within ${Math.round(this.#o.startTimeoutMs / 1000)} s (no 200 from ${this.#o.readyUrl}); it was stopped`,
          this.#facts("starting"),
          true,
        );
      }
      if (await this.#probe(Math.min(1000, left))) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        exited,
        new Promise((r) => {
          timer = setTimeout(r, Math.min(interval, Math.max(0, deadline - performance.now())));
        }),
      ]);
      clearTimeout(timer);
    }
  }

  async #probe(timeoutMs: number): Promise<boolean> {
    if (this.#o.readyUrl.startsWith("tcp://")) return tcpAccepts(this.#o.readyUrl, timeoutMs);
    try {
      const res = await sendRequest(this.#o.readyUrl, { timeoutMs, what: this.name });
      await readBody(res).catch(() => "");
      return res.statusCode === 200;
    } catch {
      return false;
    }
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves with how the engine ended. Idempotent. */
  stop(): Promise<EngineExit | undefined> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<EngineExit | undefined> {
    if (this.#child === undefined || this.#exited === undefined) {
      this.#state = "stopped";
      return undefined;
    }
    if (this.#exit !== undefined) return this.#exit;
    if (this.#state !== "failed") this.#state = "stopping";
    this.#signal("SIGTERM");
    const grace = this.#o.stopGraceMs ?? 5000;
    const timer = setTimeout(() => {
      this.#o.log.warn(
        { engine: this.name, engine_pid: this.#pid, grace_ms: grace },
        `${this.name} ignored SIGTERM; killing it`,
      );
      this.#signal("SIGKILL");
    }, grace);
    try {
      return await this.#exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Signals the engine itself (its pid, not a guard's). */
  #signal(signal: NodeJS.Signals): void {
    const pid = this.#pid ?? this.#child?.pid;
    if (pid === undefined || this.#exit !== undefined) return;
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #pipe(stream: NodeJS.ReadableStream | null, name: "stdout" | "stderr"): void {
    if (!stream) return;
    const log = this.#o.log;
    const splitter = new LineSplitter((line) => {
      this.#tail.push(line);
      log.info({ engine: this.name, stream: name }, line);
    });
    stream.on("data", (chunk: Buffer) => splitter.push(chunk));
    stream.on("end", () => splitter.end());
    stream.on("error", () => undefined);
  }

  #facts(state: EngineState = this.#state) {
    return { name: this.name, binary: this.binary, state, exit: this.#exit, logTail: this.#tail.lines(20) };
  }
}

/** What {@link startEngineOnFreePort} needs: the engine, how it is called for a port, where it says it is ready. */
export interface EngineOnPortOptions {
  name: string;
  binary: string;
  /** Its arguments for the port it is to listen on (127.0.0.1). */
  args: (port: number) => string[];
  /** Variables for it, for that port (an engine told where to listen by its environment). */
  env?: (port: number) => Record<string, string>;
  /** The directory it runs in (ComfyUI's checkout). */
  cwd?: string;
  binaryHint: string;
  /** The readiness probe's path, e.g. `/health`. */
  readyPath: string;
  startTimeoutMs: number;
  guard?: EngineGuard;
}

/**
 * Starts an adapter's engine on a free loopback port as an EngineProcess: its output in the
 * adapter's log (component "engine"), its death while serving reported to `ctx.fail` (the worker
 * exits 1 and its hive restarts it), the start cancelled with `ctx.signal`. Resolves once the
 * readiness probe answers 200; throws EngineStartError (its exit, its last log lines) otherwise.
 */
export async function startEngineOnFreePort(
  o: EngineOnPortOptions,
  ctx: { signal: AbortSignal; log: Logger; fail(error: Error): void },
): Promise<{ process: EngineProcess; baseUrl: string }> {
  const port = await freePort("127.0.0.1");
  const baseUrl = `http://127.0.0.1:${port}`;
  const args = o.args(port);
  ctx.log.info({ engine: o.name, binary: o.binary, args, url: baseUrl }, `starting ${o.name}`);
  const process = new EngineProcess({
    name: o.name,
    binary: o.binary,
    args,
    env: o.env?.(port),
    cwd: o.cwd,
    binaryHint: o.binaryHint,
    readyUrl: `${baseUrl}${o.readyPath}`,
    startTimeoutMs: o.startTimeoutMs,
    guard: o.guard,
    log: ctx.log.child({ component: "engine" }),
    onUnexpectedExit: (error) => ctx.fail(error),
  });
  await process.start(ctx.signal);
  return { process, baseUrl };
}

/** True when `tcp://host:port` accepts a connection within `timeoutMs` (the connection is closed at once). */
export function tcpAccepts(url: string, timeoutMs: number): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname.replace(/^\[|\]$/g, ""), port: Number(port) });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
