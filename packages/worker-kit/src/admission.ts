import { QueueFullError, type RbeeError } from "@rbee/contract";

interface Waiter {
  resolve: (release: () => void) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * Admission control: `slots` requests run at once, up to `maxQueue` more wait in FIFO order,
 * and the next one is refused with a 429 whose Retry-After estimates when a slot frees.
 */
export class Admission {
  #slots: number;
  #maxQueue: number;
  #inFlight = 0;
  #queue: Waiter[] = [];
  #idleWaiters: Array<() => void> = [];
  /** Exponentially weighted average of how long a slot stays taken, in ms. */
  #avgHoldMs = 1000;

  constructor(slots: number, maxQueue: number) {
    if (!Number.isInteger(slots) || slots < 1) throw new Error(`slots must be a whole number ≥ 1, got ${slots}`);
    this.#slots = slots;
    this.#maxQueue = maxQueue;
  }

  get slots(): number {
    return this.#slots;
  }

  get maxQueue(): number {
    return this.#maxQueue;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Seconds until a queued request would likely start, for Retry-After. */
  retryAfterSeconds(): number {
    const waves = Math.ceil((this.#queue.length + 1) / this.#slots);
    return Math.max(1, Math.ceil((waves * this.#avgHoldMs) / 1000));
  }

  /**
   * Takes a slot, waiting in the queue if all are taken. Resolves a `release` function (idempotent).
   * Throws QueueFullError when the queue is full, and the signal's reason when it aborts while waiting.
   */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#inFlight < this.#slots && this.#queue.length === 0) {
      return Promise.resolve(this.#take());
    }
    if (this.#queue.length >= this.#maxQueue) {
      return Promise.reject(new QueueFullError(this.#queue.length, this.#maxQueue, this.retryAfterSeconds()));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          this.#remove(waiter);
          reject(signal?.reason);
        },
      };
      signal?.addEventListener("abort", waiter.onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  /** Refuses every queued request with `err` (used when shutting down). */
  rejectQueued(err: RbeeError): void {
    const waiting = this.#queue.splice(0);
    for (const w of waiting) {
      w.signal?.removeEventListener("abort", w.onAbort);
      w.reject(err);
    }
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.#inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #take(): () => void {
    this.#inFlight++;
    const started = performance.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#avgHoldMs = this.#avgHoldMs * 0.8 + (performance.now() - started) * 0.2;
      this.#inFlight--;
      this.#next();
    };
  }

  #next(): void {
    while (this.#inFlight < this.#slots && this.#queue.length > 0) {
      const w = this.#queue.shift() as Waiter;
      w.signal?.removeEventListener("abort", w.onAbort);
      w.resolve(this.#take());
    }
    if (this.#inFlight === 0) {
      const waiters = this.#idleWaiters.splice(0);
      for (const resolve of waiters) resolve();
    }
  }

  #remove(w: Waiter): void {
    const i = this.#queue.indexOf(w);
    if (i >= 0) this.#queue.splice(i, 1);
  }
}
