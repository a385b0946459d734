import { SERVING_STATUSES, type WorkerStatus } from "@rbee/contract";
import { StateMachine, type TransitionTable } from "@rbee/server-kit";

/** The worker's life cycle: which status may follow which. */
export const WORKER_STATUS_TRANSITIONS: TransitionTable<WorkerStatus> = Object.freeze({
  Starting: ["Ready", "Stopping", "Failed"],
  Ready: ["Busy", "Stopping", "Failed"],
  Busy: ["Ready", "Stopping", "Failed"],
  Stopping: ["Stopped", "Failed"],
  Stopped: [],
  Failed: ["Stopping", "Stopped"],
});

/** The worker's status: Starting → Ready ⇄ Busy → Stopping → Stopped, with listeners for changes. */
export class WorkerStatusMachine {
  readonly #machine = new StateMachine<WorkerStatus>("worker status", WORKER_STATUS_TRANSITIONS, "Starting");
  #listeners: Array<(to: WorkerStatus, from: WorkerStatus) => void> = [];

  get status(): WorkerStatus {
    return this.#machine.state;
  }

  get serving(): boolean {
    return SERVING_STATUSES.includes(this.status);
  }

  get stopping(): boolean {
    return this.status === "Stopping" || this.status === "Stopped";
  }

  /**
   * Moves to `to` (staying is no move); a move the life cycle does not allow throws
   * InvalidTransitionError (a bug, not a user error).
   */
  transition(to: WorkerStatus): void {
    if (this.status === to) return;
    const from = this.#machine.move(to);
    for (const l of this.#listeners) l(to, from);
  }

  /** Calls `listener` after every move; returns what removes it again. */
  onChange(listener: (to: WorkerStatus, from: WorkerStatus) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  /**
   * Resolves when the worker no longer starts (Ready, or Failed, Stopping...) or after `ms`,
   * whichever is first, or at once when `signal` aborts: a health check that waits for readiness
   * instead of polling for it.
   */
  settled(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.status !== "Starting" || ms <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        off();
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      const off = this.onChange(done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}
