/**
 * Groups streamed text into events: the first piece after a quiet spell is sent at once (so the
 * time to first token is not delayed), and the pieces that follow within `intervalMs` are sent
 * together as one event when the interval ends. Every event is a socket write and, downstream, a
 * parse and a write again; on a small model one per token costs a tenth of the speed (measured in
 * docs/llm-worker.md), while a reader cannot tell 10 ms groups from single tokens.
 */
export class TokenBatcher {
  #send: (text: string) => Promise<unknown>;
  #intervalMs: number;
  #pending = "";
  #timer: NodeJS.Timeout | undefined;
  #lastSent = Number.NEGATIVE_INFINITY;
  #writing: Promise<unknown> | undefined;

  constructor(send: (text: string) => Promise<unknown>, intervalMs: number) {
    this.#send = send;
    this.#intervalMs = intervalMs;
  }

  /** Adds text. Returns a promise only when the client is not keeping up (backpressure). */
  push(text: string): Promise<unknown> | undefined {
    this.#pending += text;
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
    if (this.#pending !== "") this.#sendPending();
    await this.#writing;
  }

  #sendPending(): void {
    this.#timer = undefined;
    if (this.#pending === "") return;
    const text = this.#pending;
    this.#pending = "";
    this.#lastSent = performance.now();
    const previous = this.#writing;
    const write = (previous ?? Promise.resolve()).then(() => this.#send(text));
    this.#writing = write;
    void write.finally(() => {
      if (this.#writing === write) this.#writing = undefined;
    });
  }
}
