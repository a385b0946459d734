/** When a crashed worker is restarted, and when the hive gives up on it. */
export interface RestartPolicyOptions {
  /** Restarts allowed within `windowMs`; one more crash in the window makes the worker Failed. */
  maxRestarts: number;
  /** Delay before the first restart; it doubles with every restart in the window. */
  backoffMs: number;
  maxBackoffMs: number;
  windowMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicyOptions = {
  maxRestarts: 5,
  backoffMs: 1_000,
  maxBackoffMs: 30_000,
  windowMs: 10 * 60_000,
};

export type RestartDecision = { restart: true; delayMs: number } | { restart: false; restartsInWindow: number };

/**
 * Decides, from the times of a worker's earlier restarts, whether it is restarted again and after
 * how long: `backoffMs · 2^(restarts in the window)`, at most `maxBackoffMs`, until `maxRestarts`
 * restarts happened within `windowMs`.
 */
export class RestartPolicy {
  readonly options: RestartPolicyOptions;

  constructor(options: Partial<RestartPolicyOptions> = {}) {
    this.options = { ...DEFAULT_RESTART_POLICY, ...options };
  }

  /** Drops restart times older than the window from `times` (in place) and decides. */
  next(times: number[], now = Date.now()): RestartDecision {
    const { maxRestarts, backoffMs, maxBackoffMs, windowMs } = this.options;
    while (times.length > 0 && (times[0] as number) < now - windowMs) times.shift();
    if (times.length >= maxRestarts) return { restart: false, restartsInWindow: times.length };
    return { restart: true, delayMs: Math.min(maxBackoffMs, backoffMs * 2 ** times.length) };
  }
}
