/** How far a download got. */
export interface DownloadProgress {
  /** Bytes of the file on disk, including those a resume started from (back to 0 if the file had to start over). */
  done: number;
  /** The file's size, when known. */
  total: number | null;
  /** Bytes per second over the last few seconds. */
  rate: number;
  /** Seconds left at that rate, when the size is known and bytes are moving. */
  etaSeconds: number | null;
  /** Bytes fetched over the network by this call. */
  fetched: number;
}

export interface ProgressSample {
  done: number;
  total: number | null;
  fetched: number;
}

/** Progress events at most every 100 ms (10/s), and one at the end. */
const INTERVAL_MS = 100;
/** The rate is measured over this window. */
const WINDOW_MS = 3000;

/**
 * Polls a download's counters on a timer and reports them, with a rate over a sliding window:
 * nothing is computed per chunk, and a stalled download still reports (its rate falls to 0).
 */
export class ProgressMeter {
  readonly #emit: (p: DownloadProgress) => void;
  readonly #read: () => ProgressSample;
  readonly #samples: Array<{ t: number; fetched: number }> = [];
  #timer: NodeJS.Timeout | undefined;
  #last: DownloadProgress | undefined;
  #lastAt = 0;

  constructor(read: () => ProgressSample, emit: (p: DownloadProgress) => void) {
    this.#read = read;
    this.#emit = emit;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#tick(false), INTERVAL_MS);
    this.#timer.unref();
  }

  /** Stops the timer; `final` sends a last event with the final counters. */
  stop(final: boolean): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (final) this.#tick(true);
  }

  #tick(force: boolean): void {
    const s = this.#read();
    const t = performance.now();
    this.#samples.push({ t, fetched: s.fetched });
    while (this.#samples.length > 2 && t - this.#samples[0]!.t > WINDOW_MS) this.#samples.shift();
    const first = this.#samples[0]!;
    const dt = (t - first.t) / 1000;
    const rate = dt > 0 ? Math.max(0, (s.fetched - first.fetched) / dt) : 0;
    const etaSeconds = s.total !== null && rate > 0 ? Math.max(0, (s.total - s.done) / rate) : null;
    const p: DownloadProgress = { done: s.done, total: s.total, rate, etaSeconds, fetched: s.fetched };
    const last = this.#last;
    const same = last && last.done === p.done && last.fetched === p.fetched && last.total === p.total;
    // unchanged counters are still reported once a second, so a stall shows as a falling rate
    if (!force && same && t - this.#lastAt < 1000) return;
    this.#last = p;
    this.#lastAt = t;
    try {
      this.#emit(p);
    } catch {
      // a listener's failure is not the download's
    }
  }
}
