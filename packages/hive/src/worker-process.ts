import { type ChildProcess, spawn } from "node:child_process";
import { closeSync } from "node:fs";
import { readBody, StateMachine, sendRequest, TlsTrustError, type TransitionTable } from "@rbee/server-kit";
import { WorkerStartError } from "./errors.js";
import { describeExit, type ExitInfo } from "./exit-reason.js";
import { formatLogLine, isHealthPollLine, openWorkerLog, readLastLines } from "./worker-log-file.js";

/**
 * How long a starting worker is asked to hold GET /health until it is ready (`?wait_ms=`, which
 * rbee's workers honour): the hive hears of readiness when it happens, not at its next poll.
 */
const HEALTH_WAIT_MS = 1000;
/**
 * How often GET /health is polled while a worker starts, for a worker that answers at once (one
 * that does not know `wait_ms`): often in its first second (a spare worker is ready within a few
 * hundred ms), then every 100 ms (each poll is a request and a log line in the worker, which is
 * loading its model meanwhile).
 */
const readyPollMs = (sinceStartMs: number) => (sinceStartMs < 1000 ? 25 : 100);
/** Log lines quoted in a start error. */
const LOG_TAIL_LINES = 20;
/** The line the hive writes into a worker's log before each start. */
const START_MESSAGE = "hive: starting worker";

export type WorkerProcessState = "starting" | "ready" | "stopping" | "exited";

/** Which state of a worker process may follow which (it may exit at any time, once). */
export const WORKER_PROCESS_TRANSITIONS: TransitionTable<WorkerProcessState> = Object.freeze({
  starting: ["ready", "stopping", "exited"],
  ready: ["stopping", "exited"],
  stopping: ["exited"],
  exited: [],
});

export interface WorkerProcessOptions {
  workerId: string;
  /** The program to run (from the worker type's launch: node, for rbee's own workers). */
  command: string;
  /** Its arguments, e.g. the rbee CLI and `worker serve <type> ...`. */
  args: string[];
  env: NodeJS.ProcessEnv;
  /** The child's stdout and stderr are appended here. */
  logFile: string;
  /** Where the hive reaches the worker on this machine, e.g. http://127.0.0.1:9300. */
  localUrl: string;
  /** The cluster token: the worker requires it, and GET /info is checked with it. */
  token: string;
  /** A spare process that already runs as this worker (see SpareWorker.take), instead of a new one. */
  spare?: ChildProcess;
}

/**
 * One worker process, from spawn to exit: starting → ready → stopping → exited.
 *
 * `waitReady` polls GET /health and fails early, with the exit code or signal and the worker's last
 * log lines, when the process dies before it is ready; `stop` sends SIGTERM, then SIGKILL after a
 * grace period. The process is not detached: it is the hive's child, and exits by the orphan rule
 * (no heartbeat reaches the hive) if the hive dies.
 */
export class WorkerProcess {
  readonly options: WorkerProcessOptions;
  readonly child: ChildProcess;
  readonly startedAt = new Date();
  /** Resolves once the process has exited (or could not be started). */
  readonly exited: Promise<ExitInfo>;
  readonly #state: StateMachine<WorkerProcessState>;
  #exit: ExitInfo | undefined;
  #stopping: Promise<ExitInfo> | undefined;
  /** Pauses of waitReady, woken early when the process exits. */
  #wakers = new Set<() => void>();

  constructor(options: WorkerProcessOptions) {
    this.options = options;
    this.#state = new StateMachine(`worker process '${options.workerId}'`, WORKER_PROCESS_TRANSITIONS, "starting");
    const fd = openWorkerLog(options.logFile, {
      msg: START_MESSAGE,
      worker_id: options.workerId,
      command: [options.command, ...options.args].join(" "),
    });
    try {
      this.child =
        options.spare ??
        spawn(options.command, options.args, {
          env: options.env,
          stdio: ["ignore", fd, fd],
          detached: false,
        });
    } finally {
      closeSync(fd);
    }
    this.exited = new Promise((resolve) => {
      const done = (exit: ExitInfo) => {
        if (this.#exit !== undefined) return;
        this.#exit = exit;
        this.#state.move("exited");
        resolve(exit);
        for (const wake of this.#wakers) wake();
      };
      this.child.once("exit", (code, signal) => done({ code, signal }));
      this.child.once("error", (err) => done({ code: null, signal: null, error: err.message }));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get state(): WorkerProcessState {
    return this.#state.state;
  }

  get exitInfo(): ExitInfo | undefined {
    return this.#exit;
  }

  /**
   * Resolves once GET /health answers 200 and GET /info names this worker.
   * @throws WorkerStartError when the process exits first (at once, not at the timeout), or when
   *   `timeoutMs` passes (the process is left running: the caller stops it); the signal's reason
   *   when `signal` aborts.
   */
  async waitReady(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const { localUrl, workerId } = this.options;
    for (;;) {
      signal?.throwIfAborted();
      if (this.#exit !== undefined) {
        const how = describeExit(this.#exit);
        throw await this.#startError(`worker '${workerId}' ${how} while starting`);
      }
      if (Date.now() >= deadline) {
        throw await this.#startError(
          `worker '${workerId}' was not ready within ${Math.round(timeoutMs / 100) / 10} s (GET ${localUrl}/health never answered 200)`,
          true,
        );
      }
      const asked = Date.now();
      if (await this.#healthy(Math.min(HEALTH_WAIT_MS, deadline - asked), signal)) {
        await this.#checkIdentity(signal);
        if (this.state === "starting") this.#state.move("ready");
        return;
      }
      // a worker that held the request has been waited for; one that answered at once is polled
      const pollMs = readyPollMs(Date.now() - this.startedAt.getTime()) - (Date.now() - asked);
      if (pollMs > 0) await this.#pause(Math.min(pollMs, Math.max(0, deadline - Date.now())), signal);
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves how the process exited. Idempotent. */
  stop(graceMs: number): Promise<ExitInfo> {
    if (this.#exit !== undefined) return Promise.resolve(this.#exit);
    this.#stopping ??= (async () => {
      this.#state.move("stopping");
      this.kill("SIGTERM");
      const timer = setTimeout(() => this.kill("SIGKILL"), graceMs);
      try {
        return await this.exited;
      } finally {
        clearTimeout(timer);
      }
    })();
    return this.#stopping;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.#exit !== undefined) return;
    try {
      this.child.kill(signal);
    } catch {
      // already gone
    }
  }

  /**
   * This process's last log lines (not an earlier process's of the same worker, and without the
   * hive's own health polls), formatted for people.
   */
  async logTail(lines = LOG_TAIL_LINES): Promise<string[]> {
    const recent = await readLastLines(this.options.logFile, lines * 10);
    const start = recent.findLastIndex((l) => l.includes(`"msg":"${START_MESSAGE}"`));
    return recent
      .slice(Math.max(0, start))
      .filter((l) => !isHealthPollLine(l))
      .slice(-lines)
      .map((l) => formatLogLine(l));
  }

  async #startError(message: string, timedOut = false): Promise<WorkerStartError> {
    return new WorkerStartError(
      message,
      {
        workerId: this.options.workerId,
        state: this.state,
        exitCode: this.#exit?.code ?? null,
        signal: this.#exit?.signal ?? null,
        logTail: await this.logTail(),
      },
      timedOut,
    );
  }

  /** GET /health answers 200, asking a starting worker to hold the answer up to `waitMs` until it is ready. */
  async #healthy(waitMs: number, signal?: AbortSignal): Promise<boolean> {
    try {
      const res = await sendRequest(`${this.options.localUrl}/health?wait_ms=${Math.max(0, waitMs)}`, {
        signal: withTimeout(signal, Math.max(0, waitMs) + 1000),
      });
      await readBody(res);
      return res.statusCode === 200;
    } catch (err) {
      signal?.throwIfAborted();
      // the worker serves the hive's certificate: waiting longer will not make it trusted
      if (err instanceof TlsTrustError) throw await this.#startError(err.message);
      return false;
    }
  }

  /** A worker left over on the same port (from an earlier hive) must not pass for this one. */
  async #checkIdentity(signal?: AbortSignal): Promise<void> {
    const { localUrl, workerId, token } = this.options;
    let id: unknown;
    try {
      const res = await sendRequest(`${localUrl}/info`, { token, signal: withTimeout(signal, 2000) });
      id = (JSON.parse(await readBody(res)) as { id?: unknown }).id;
    } catch {
      signal?.throwIfAborted();
      return; // the worker answered /health; an /info hiccup is not worth failing the start for
    }
    if (id !== workerId) {
      throw await this.#startError(
        `${localUrl} is served by another process (worker '${String(id)}'), not by worker '${workerId}'`,
      );
    }
  }

  #pause(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        this.#wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
      this.#wakers.add(done);
    });
  }
}

function withTimeout(signal: AbortSignal | undefined, ms: number): AbortSignal {
  const timeout = AbortSignal.timeout(ms);
  return signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
}
