/** What an infer job's `done` event carries (read leniently: a newer queen may add fields). */
export interface InferResult {
  text: string;
  tokens_generated?: number;
  prompt_tokens?: number;
  finish_reason?: string;
  model?: string;
  worker_id?: string;
  duration_ms?: number;
}

export function asInferResult(value: unknown): InferResult {
  const r = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  return { ...r, text: typeof r.text === "string" ? r.text : "" } as InferResult;
}

/** "40 tokens in 0.12 s, stories260K on worker llm-1a2b, finish: length" (the time includes a worker's start). */
export function describeInferResult(r: InferResult): string {
  const parts: string[] = [];
  if (r.tokens_generated !== undefined) {
    const secs = r.duration_ms !== undefined ? ` in ${(r.duration_ms / 1000).toFixed(2)} s` : "";
    parts.push(`${r.tokens_generated} tokens${secs}`);
  }
  if (r.model && r.worker_id) parts.push(`${r.model} on worker ${r.worker_id}`);
  if (r.finish_reason) parts.push(`finish: ${r.finish_reason}`);
  return parts.join(", ");
}

/**
 * Writes streamed text to stdout and remembers whether the last character was a newline, so that
 * the output can be ended with exactly one.
 */
export class TokenWriter {
  #wrote = false;
  #endsWithNewline = true;

  write(text: string): void {
    if (text === "") return;
    process.stdout.write(text);
    this.#wrote = true;
    this.#endsWithNewline = text.endsWith("\n");
  }

  /** Ends the output with a newline unless it already ends with one. */
  end(): void {
    if (this.#wrote && !this.#endsWithNewline) process.stdout.write("\n");
    this.#wrote = false;
    this.#endsWithNewline = true;
  }

  get wrote(): boolean {
    return this.#wrote;
  }
}
