import { RbeeError } from "@rbee/contract";

/** The life of an engine process: idle → starting → ready → stopping → stopped, or failed. */
export type EngineState = "idle" | "starting" | "ready" | "stopping" | "stopped" | "failed";

/** How an engine process ended. */
export interface EngineExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function describeExit(exit: EngineExit): string {
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code}`;
}

function withTail(message: string, tail: readonly string[]): string {
  return tail.length === 0 ? `${message} (its log is empty)` : `${message}; its last log lines:\n${tail.join("\n")}`;
}

/** An engine binary that cannot be run: missing, not a file, not executable, or not a program (corrupt). */
export class EngineBinaryError extends RbeeError {
  constructor(
    readonly binary: string,
    reason: string,
    hint: string,
  ) {
    super(`cannot run the engine ${binary}: ${reason}; ${hint}`, {
      statusCode: 500,
      code: "engine_binary_unusable",
      retryable: false,
      details: { binary },
    });
  }
}

export interface EngineStartFacts {
  name: string;
  binary: string;
  state: EngineState;
  exit?: EngineExit;
  logTail: readonly string[];
}

/**
 * An engine that did not become ready: it exited while starting (its exit code or signal), or its
 * readiness probe never answered 200 before the start timeout (it was stopped then).
 */
export class EngineStartError extends RbeeError {
  readonly facts: EngineStartFacts;

  constructor(message: string, facts: EngineStartFacts, timedOut = false) {
    super(withTail(message, facts.logTail), {
      statusCode: timedOut ? 504 : 500,
      code: timedOut ? "engine_start_timeout" : "engine_start_failed",
      retryable: false,
      details: {
        engine: facts.name,
        binary: facts.binary,
        state: facts.state,
        exit_code: facts.exit?.code ?? null,
        signal: facts.exit?.signal ?? null,
        log_tail: facts.logTail,
      },
    });
    this.facts = facts;
  }
}

/** An engine that died while it served: the worker cannot go on without it. */
export class EngineExitedError extends RbeeError {
  constructor(
    readonly engine: string,
    readonly binary: string,
    readonly exit: EngineExit,
    readonly logTail: readonly string[],
  ) {
    super(withTail(`the engine ${engine} (${binary}) ${describeExit(exit)} while serving`, logTail), {
      statusCode: 503,
      code: "engine_exited",
      retryable: true,
      details: { engine, binary, exit_code: exit.code, signal: exit.signal, log_tail: logTail },
    });
  }
}
