import type { LlamaContext, LlamaContextSequence, Token } from "node-llama-cpp";

export interface SequenceLease {
  sequence: LlamaContextSequence;
  /** Leading prompt tokens already in the sequence's KV cache: evaluation starts after them. */
  reused: number;
  release(): void;
}

/**
 * How long generations hold their next token back for an erase (see SequencePool.erased): longer
 * than a decode step of a large model on a CPU, short enough not to freeze streams for long.
 */
const ERASE_HOLD_MS = 2000;

function commonPrefix(a: readonly Token[], b: readonly Token[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * The context's sequences, one per parallel slot. A request takes the free sequence that already
 * holds the longest prefix of its prompt (a chat's earlier turns, a shared system prompt), so only
 * the new tokens are evaluated; the rest of that sequence's cache is erased.
 */
export class SequencePool {
  #free: LlamaContextSequence[] = [];
  /** What each sequence holds, tracked here so picking one costs no native calls. */
  #held = new Map<LlamaContextSequence, Token[]>();
  /** Erases of the old tails of sequences just taken, under way or waiting for the context, and when each began (see `erased`). */
  #erases = new Map<Promise<unknown>, number>();

  constructor(context: LlamaContext, count: number) {
    for (let i = 0; i < count; i++) {
      const seq = context.getSequence();
      this.#free.push(seq);
      this.#held.set(seq, []);
    }
  }

  get free(): number {
    return this.#free.length;
  }

  /**
   * Undefined, or a promise that settles when the erases under way now are done; generations wait
   * for it before they ask for their next token. An erase needs the context to itself, and
   * node-llama-cpp's decode loop keeps the context for as long as any sequence has a token queued:
   * with generations running, a request that arrived a few ms after them waited for them all to end
   * (0.3-0.8 s for 64 tokens here) before its own could start. Holding the next tokens back empties
   * the queue, the loop lets the erase in, and the generations go on a batch later. An erase that
   * still waits after ERASE_HOLD_MS waits for something else than these generations (a tool-calling
   * one, which node-llama-cpp's LlamaChat runs): they no longer hold back for it.
   */
  erased(): Promise<unknown> | undefined {
    if (this.#erases.size === 0) return undefined;
    const now = performance.now();
    let oldest = now;
    const waiting: Promise<unknown>[] = [];
    for (const [work, since] of this.#erases) {
      if (now - since >= ERASE_HOLD_MS) continue;
      waiting.push(work);
      oldest = Math.min(oldest, since);
    }
    if (waiting.length === 0) return undefined;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ERASE_HOLD_MS - (now - oldest));
      void Promise.allSettled(waiting).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Runs an erase of a sequence's cache, announced to `erased()` until it ends. */
  async #erase(work: Promise<unknown>): Promise<void> {
    this.#erases.set(work, performance.now());
    try {
      await work;
    } finally {
      this.#erases.delete(work);
    }
  }

  /** Takes a free sequence for `prompt`. The caller's admission control guarantees one is free. */
  async acquire(prompt: readonly Token[]): Promise<SequenceLease> {
    let best = -1;
    let bestLen = -1;
    for (let i = 0; i < this.#free.length; i++) {
      const len = commonPrefix(this.#held.get(this.#free[i] as LlamaContextSequence) ?? [], prompt);
      if (len > bestLen) {
        best = i;
        bestLen = len;
      }
    }
    if (best < 0) throw new Error("no free sequence: more requests admitted than the context has sequences");
    const [sequence] = this.#free.splice(best, 1) as [LlamaContextSequence];
    // evaluate at least the last prompt token, so there are logits to sample the first new token from
    let reused = Math.min(bestLen, prompt.length - 1);
    try {
      if (sequence.nextTokenIndex > reused) {
        await this.#erase(sequence.eraseContextTokenRanges([{ start: reused, end: sequence.nextTokenIndex }]));
      }
    } catch {
      // some models' caches cannot drop a tail; start that sequence over instead
      reused = 0;
      try {
        await this.#erase(sequence.clearHistory());
      } catch (err) {
        this.#held.set(sequence, sequence.contextTokens);
        this.#free.push(sequence);
        throw err;
      }
    }
    let released = false;
    return {
      sequence,
      reused,
      release: () => {
        if (released) return;
        released = true;
        this.#held.set(sequence, sequence.contextTokens);
        this.#free.push(sequence);
      },
    };
  }
}
