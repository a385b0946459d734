import { Rng } from "../fuzz.js";

/** How one request of the load ended. */
export interface RequestRecord {
  start: number;
  end: number;
  /** "ok", or the failure's kind: "503 worker_unavailable", "stream error worker_unavailable", "connection ECONNREFUSED", "hang"... */
  outcome: string;
  /** Set for a failure that is not a clear error: a hang, a cut stream or an unexplained dropped connection. */
  unclear?: string;
}

export interface LoadOptions {
  queenUrl: () => string;
  apiKey: () => string;
  model: string;
  clients: number;
  /** A request that has not ended after this long is a hang. */
  timeoutMs: number;
  seed: number;
  /** Whether the queen was down (killed, not yet restarted) at some moment of [start, end]. */
  queenDownDuring: (start: number, end: number) => boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A steady load of real requests through the queen: `clients` loops, each one request after
 * another, a streamed chat completion or a plain completion (chosen by a seeded RNG), a few tokens
 * each. Every request ends in a record: a success, a clear error (an HTTP error in OpenAI's shape,
 * an `error` chunk in a stream, a refused or dropped connection while the queen was down), or an
 * unclear end (a hang past the timeout, a stream cut without an error, a dropped connection while
 * the queen was up).
 */
export class ChaosLoad {
  readonly records: RequestRecord[] = [];
  #running = false;
  #loops: Promise<void>[] = [];

  constructor(readonly o: LoadOptions) {}

  start(): void {
    this.#running = true;
    this.#loops = Array.from({ length: this.o.clients }, (_, i) => this.#loop(new Rng(this.o.seed + i + 1)));
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#loops);
  }

  /** Records of requests that ended at or after `since`. */
  since(since: number): RequestRecord[] {
    return this.records.filter((r) => r.end >= since);
  }

  async #loop(rng: Rng): Promise<void> {
    while (this.#running) {
      const record = await this.request(rng.chance(0.5));
      this.records.push(record);
      if (record.outcome !== "ok") await sleep(100 + rng.int(200)); // a failing request returns at once: do not spin
    }
  }

  /** One request, classified. */
  async request(stream: boolean): Promise<RequestRecord> {
    const start = Date.now();
    const done = (outcome: string, unclear?: string): RequestRecord => ({
      start,
      end: Date.now(),
      outcome,
      ...(unclear ? { unclear } : {}),
    });
    const body = stream
      ? {
          model: this.o.model,
          messages: [{ role: "user", content: "Tell me a story." }],
          max_tokens: 12,
          stream: true,
        }
      : { model: this.o.model, prompt: "Once upon a time", max_tokens: 12 };
    const path = stream ? "/v1/chat/completions" : "/v1/completions";
    try {
      const res = await fetch(`${this.o.queenUrl()}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${this.o.apiKey()}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
      const text = await res.text();
      if (res.status !== 200) {
        const code = errorCode(text);
        return code
          ? done(`${res.status} ${code}`)
          : done(
              `${res.status} without an error body`,
              `HTTP ${res.status} without an error body: ${text.slice(0, 200)}`,
            );
      }
      if (!stream) {
        const ok = (JSON.parse(text) as { choices?: Array<{ text?: string }> }).choices?.[0]?.text !== undefined;
        return ok ? done("ok") : done("200 without a choice", `200 without a choice: ${text.slice(0, 200)}`);
      }
      const data = text
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trim());
      const failed = data.map(errorCode).find((c) => c !== undefined);
      if (failed) return done(`stream error ${failed}`);
      if (data.at(-1) === "[DONE]") return done("ok");
      return this.#dropped(start, "stream cut without an error", text.slice(-200));
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      if (e.name === "TimeoutError") return done("hang", `no end within ${this.o.timeoutMs} ms (${path})`);
      return this.#dropped(start, `connection ${e.cause?.code ?? e.message}`, String(e.cause ?? e.message));
    }
  }

  /** A connection that ends without an answer is clear only when the queen itself was down meanwhile. */
  #dropped(start: number, outcome: string, detail: string): RequestRecord {
    const end = Date.now();
    if (this.o.queenDownDuring(start, end)) return { start, end, outcome: `${outcome} (queen killed)` };
    return { start, end, outcome, unclear: `${outcome} while the queen was up: ${detail}` };
  }
}

/** The `code` (or `type`) of an OpenAI-shaped error body, when `text` is one. */
function errorCode(text: string): string | undefined {
  try {
    const e = (JSON.parse(text) as { error?: { code?: string | null; type?: string; message?: string } }).error;
    if (e && typeof e.message === "string" && e.message !== "") return e.code ?? e.type ?? "error";
  } catch {}
  return undefined;
}
