/**
 * Groups streamed text into events: the first piece after a quiet spell is sent at once (so the
 * time to first token is not delayed), and the pieces that follow within `intervalMs` are sent
 * together as one event when the interval ends. Every event is a socket write and, downstream, a
 * parse and a write again; on a small model one per token costs a tenth of the speed (measured in
 * docs/llm-worker.md), while a reader cannot tell 10 ms groups from single tokens.
 */
export class TokenBatcher<Extra = never> {
  #send: (text: string, extras: Extra[]) => Promise<unknown>;
  #intervalMs: number;
  #pending = "";
  #pendingExtras: Extra[] = [];
  #timer: NodeJS.Timeout | undefined;
  #lastSent = Number.NEGATIVE_INFINITY;
  #writing: Promise<unknown> | undefined;

  /** `send` gets the grouped text and the extras (per-token facts such as logprobs) pushed with it. */
  constructor(send: (text: string, extras: Extra[]) => Promise<unknown>, intervalMs: number) {
    this.#send = send;
    this.#intervalMs = intervalMs;
  }

  /** Adds text. Returns a promise only when the client is not keeping up (backpressure). */
  push(text: string, extras?: readonly Extra[]): Promise<unknown> | undefined {
    this.#pending += text;
    if (extras !== undefined) this.#pendingExtras.push(...extras);
    if (this.#timer === undefined) {
      const wait = this.#lastSent + this.#intervalMs - performance.now();
      if (wait <= 0) this.#sendPending();
      else this.#timer = setTimeout(() => this.#sendPending(), wait);
    }
    return this.#writing;
  }

  /** Sends whatever is pending now; resolves when it has been written. */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#pending !== "" || this.#pendingExtras.length > 0) this.#sendPending();
    await this.#writing;
  }

  /**
   * Sends the pending text, then `send` (another kind of event), in order with every write before
   * and after it. Resolves when `send` has been written.
   */
  sendAfter(send: () => Promise<unknown>): Promise<unknown> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#sendPending();
    const write = (this.#writing ?? Promise.resolve()).then(send);
    this.#writing = write;
    void write.finally(() => {
      if (this.#writing === write) this.#writing = undefined;
    });
    return write;
  }

  #sendPending(): void {
    this.#timer = undefined;
    if (this.#pending === "" && this.#pendingExtras.length === 0) return;
    const text = this.#pending;
    const extras = this.#pendingExtras;
    this.#pending = "";
    this.#pendingExtras = [];
    this.#lastSent = performance.now();
    const previous = this.#writing;
    const write = (previous ?? Promise.resolve()).then(() => this.#send(text, extras));
    this.#writing = write;
    void write.finally(() => {
      if (this.#writing === write) this.#writing = undefined;
    });
  }
}
