/**
 * Waiting for the cluster to change. Requests that wait for a worker, for memory, or for a drain
 * sleep here until something happens that may let them go on (a worker came up or went away, a
 * request ended, a spawn finished), or a second passes, then look again. It decides nothing: the
 * waiters look at the cluster themselves.
 */
export class ClusterChanges {
  #waiters = new Set<() => void>();
  #queued = false;

  /** Resolves at the next change of the cluster that may free a device (or after a second, to look again). */
  next(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const cleanUp = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#waiters.delete(done);
      };
      const done = () => {
        cleanUp();
        resolve();
      };
      // rejects, not resolves: a loop that waits for changes until its signal aborts must end
      // (resolving here made a cancelled drain spin forever and froze the queen)
      const onAbort = () => {
        cleanUp();
        reject(signal.reason);
      };
      const timer = setTimeout(done, 1000);
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#waiters.add(done);
    });
  }

  /**
   * Wakes whatever waits for a change, after the current turn: requests that were waiting for a
   * worker that just came up take their slots on it before anything else looks at it.
   */
  changed(): void {
    if (this.#queued || this.#waiters.size === 0) return;
    this.#queued = true;
    setImmediate(() => {
      this.#queued = false;
      for (const wake of [...this.#waiters]) wake();
    });
  }
}

/** Resolves like `promise`, or rejects with the signal's reason when it aborts first. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
