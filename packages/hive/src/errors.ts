import { NotFoundError, RbeeError } from "@rbee/contract";

/** POST /v1/workers with a worker_id this hive already has. */
export class WorkerExistsError extends RbeeError {
  constructor(workerId: string) {
    super(`a worker with the id '${workerId}' already exists on this hive; stop it first or choose another id`, {
      statusCode: 409,
      code: "worker_exists",
      param: "worker_id",
      details: { worker_id: workerId },
    });
  }
}

export class WorkerNotFoundError extends NotFoundError {
  constructor(workerId: string) {
    super(`no worker '${workerId}' on this hive; list them with GET /v1/workers`, "worker_not_found");
  }
}

/** A model the catalog has but cannot serve (broken metadata, file gone, download unfinished). */
export class ModelNotAvailableError extends RbeeError {
  constructor(modelId: string, status: string, why: string | undefined) {
    super(`model '${modelId}' cannot be served: its status is ${status}${why ? ` (${why})` : ""}`, {
      statusCode: 409,
      code: "model_not_available",
      param: "model",
      details: { model: modelId, status },
    });
  }
}

export interface WorkerStartFacts {
  workerId: string;
  /** The process's state when it failed: "starting", "ready", ... */
  state: string;
  exitCode: number | null;
  signal: string | null;
  /** The worker's last log lines, formatted for people. */
  logTail: string[];
}

/**
 * A worker that did not become ready: it exited while starting (the message names the exit code or
 * signal), or it did not answer GET /health in time. Carries the worker's last log lines.
 */
export class WorkerStartError extends RbeeError {
  readonly facts: WorkerStartFacts;

  constructor(message: string, facts: WorkerStartFacts, timedOut = false) {
    const tail =
      facts.logTail.length === 0 ? " (its log is empty)" : `; its last log lines:\n${facts.logTail.join("\n")}`;
    super(`${message}${tail}`, {
      statusCode: timedOut ? 504 : 500,
      code: timedOut ? "worker_start_timeout" : "worker_start_failed",
      retryable: false,
      details: {
        worker_id: facts.workerId,
        state: facts.state,
        exit_code: facts.exitCode,
        signal: facts.signal,
        log_tail: facts.logTail,
      },
    });
    this.facts = facts;
  }

  /** The worker could not bind its port (another process took it between the probe and the bind). */
  get portInUse(): boolean {
    return this.facts.logTail.some((l) => /EADDRINUSE/.test(l));
  }
}

/** A spawn that was cut short because the worker was stopped (DELETE) while it started. */
export class WorkerStoppedError extends RbeeError {
  constructor(workerId: string, reason: string) {
    super(`worker '${workerId}' was stopped before it became ready: ${reason}`, {
      statusCode: 409,
      code: "worker_stopped",
      details: { worker_id: workerId },
    });
  }
}
