import { RbeeError } from "@rbee/contract";

/** Writes allowed per client in a window; past it, 429 with Retry-After. */
export interface RateLimitOptions {
  max: number;
  windowMs: number;
}

/** A fixed-window counter per key (client address, account). Memory is bounded by forgetting old windows. */
export class RateLimiter {
  readonly #hits = new Map<string, { start: number; count: number }>();
  constructor(readonly options: RateLimitOptions) {}

  /** Counts one write by `key`; throws 429 `rate_limited` when it is over the limit. */
  take(key: string, now = Date.now()): void {
    const { max, windowMs } = this.options;
    let w = this.#hits.get(key);
    if (w === undefined || now - w.start >= windowMs) {
      if (this.#hits.size > 10_000) this.#forget(now);
      w = { start: now, count: 0 };
      this.#hits.set(key, w);
    }
    w.count++;
    if (w.count > max) {
      const retry = Math.max(1, Math.ceil((w.start + windowMs - now) / 1000));
      throw new RbeeError(
        `too many writes: at most ${max} per ${Math.round(windowMs / 1000)} s from one client; try again in ${retry} s`,
        { statusCode: 429, code: "rate_limited", retryAfterSeconds: retry },
      );
    }
  }

  #forget(now: number): void {
    for (const [k, w] of this.#hits) if (now - w.start >= this.options.windowMs) this.#hits.delete(k);
  }
}
