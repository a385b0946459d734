/**
 * Finds stop strings in generated text as it streams. Text that could be the start of a stop
 * string is held back until it is known not to be one, so a client never sees part of a stop.
 */
export class StopMatcher {
  #stops: string[];
  #held = "";
  #matched: string | undefined;

  constructor(stops: readonly string[]) {
    this.#stops = stops.filter((s) => s.length > 0);
  }

  get active(): boolean {
    return this.#stops.length > 0;
  }

  /** The stop string that ended the text, once `push` has found one. */
  get matched(): string | undefined {
    return this.#matched;
  }

  /** Adds text; returns what may be emitted and whether a stop string was found (its text excluded). */
  push(text: string): { emit: string; stopped: boolean } {
    if (this.#stops.length === 0) return { emit: text, stopped: false };
    const buffer = this.#held + text;
    let cut = -1;
    for (const stop of this.#stops) {
      const i = buffer.indexOf(stop);
      if (i >= 0 && (cut < 0 || i < cut)) {
        cut = i;
        this.#matched = stop;
      }
    }
    if (cut >= 0) {
      this.#held = "";
      return { emit: buffer.slice(0, cut), stopped: true };
    }
    const hold = this.#partialSuffix(buffer);
    this.#held = buffer.slice(buffer.length - hold);
    return { emit: buffer.slice(0, buffer.length - hold), stopped: false };
  }

  /** The held-back text, when generation ends for another reason. */
  flush(): string {
    const rest = this.#held;
    this.#held = "";
    return rest;
  }

  /** Length of the longest suffix of `buffer` that is a proper prefix of some stop string. */
  #partialSuffix(buffer: string): number {
    let best = 0;
    for (const stop of this.#stops) {
      const max = Math.min(stop.length - 1, buffer.length);
      for (let n = max; n > best; n--) {
        if (buffer.endsWith(stop.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
