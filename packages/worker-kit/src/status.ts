import { SERVING_STATUSES, type WorkerStatus } from "@rbee/contract";

const ALLOWED: Record<WorkerStatus, readonly WorkerStatus[]> = {
  Starting: ["Ready", "Stopping", "Failed"],
  Ready: ["Busy", "Stopping", "Failed"],
  Busy: ["Ready", "Stopping", "Failed"],
  Stopping: ["Stopped", "Failed"],
  Stopped: [],
  Failed: ["Stopping", "Stopped"],
};

/** The worker's status: Starting → Ready ⇄ Busy → Stopping → Stopped, with listeners for changes. */
export class WorkerStatusMachine {
  #status: WorkerStatus = "Starting";
  #listeners: Array<(to: WorkerStatus, from: WorkerStatus) => void> = [];

  get status(): WorkerStatus {
    return this.#status;
  }

  get serving(): boolean {
    return SERVING_STATUSES.includes(this.#status);
  }

  get stopping(): boolean {
    return this.#status === "Stopping" || this.#status === "Stopped";
  }

  /** Moves to `to`; a move the life cycle does not allow throws (a bug, not a user error). */
  transition(to: WorkerStatus): void {
    const from = this.#status;
    if (from === to) return;
    if (!ALLOWED[from].includes(to)) throw new Error(`worker status cannot move from ${from} to ${to}`);
    this.#status = to;
    for (const l of this.#listeners) l(to, from);
  }

  onChange(listener: (to: WorkerStatus, from: WorkerStatus) => void): void {
    this.#listeners.push(listener);
  }
}
