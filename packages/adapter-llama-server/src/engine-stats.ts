import type { Logger } from "@rbee/server-kit";
import { type EngineClient, parsePrometheusText, processRssAnywhere } from "@rbee/worker-kit";

/** What llama-server's own /metrics says, as of the last poll. */
export interface LlamaServerStats {
  /** `llamacpp:requests_processing`: requests in its slots now. */
  processing: number;
  /** `llamacpp:requests_deferred`: requests waiting for a slot inside llama-server. */
  deferred: number;
  /** Generated tokens per second between the last two polls (`llamacpp:tokens_predicted_total`). */
  tokensPerSecond: number;
  /** Resident memory of llama-server in bytes (0 when it cannot be read). */
  rss: number;
  /** When the last poll succeeded (ms since the epoch), 0 before. */
  at: number;
}

/**
 * Polls llama-server's Prometheus /metrics on an interval, off the heartbeat's path: a heartbeat
 * reads the last values at once. A failed or odd poll keeps the previous values (logged once).
 */
export class EngineStatsPoller {
  #client: EngineClient;
  #log: Logger;
  #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #last: { tokens: number; at: number } | undefined;
  #warned = false;
  #pid: () => number | undefined;
  stats: LlamaServerStats = { processing: 0, deferred: 0, tokensPerSecond: 0, rss: 0, at: 0 };

  /** `pid`: llama-server's, for its memory (read with the metrics: /proc on Linux, `ps` elsewhere). */
  constructor(client: EngineClient, log: Logger, intervalMs: number, pid: () => number | undefined) {
    this.#client = client;
    this.#log = log;
    this.#intervalMs = intervalMs;
    this.#pid = pid;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#poll();
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
  }

  /** One poll now (also used by the loop). */
  async poll(): Promise<void> {
    const rss = await processRssAnywhere(this.#pid());
    if (rss > 0) this.stats = { ...this.stats, rss };
    let text: string;
    try {
      text = await this.#client.text("/metrics", { timeoutMs: Math.max(500, this.#intervalMs) });
    } catch (err) {
      if (!this.#warned && this.#running) {
        this.#warned = true;
        this.#log.warn(
          { err: (err as Error).message },
          "cannot read llama-server's /metrics; heartbeat keeps its last values",
        );
      }
      return;
    }
    const m = parsePrometheusText(text);
    const now = Date.now();
    const tokens = m.get("llamacpp:tokens_predicted_total");
    let rate = this.stats.tokensPerSecond;
    if (tokens !== undefined) {
      if (this.#last && now > this.#last.at)
        rate = Math.max(0, ((tokens - this.#last.tokens) * 1000) / (now - this.#last.at));
      this.#last = { tokens, at: now };
    }
    this.stats = {
      processing: Math.max(0, Math.round(m.get("llamacpp:requests_processing") ?? this.stats.processing)),
      deferred: Math.max(0, Math.round(m.get("llamacpp:requests_deferred") ?? this.stats.deferred)),
      tokensPerSecond: Math.round(rate * 10) / 10,
      rss: this.stats.rss,
      at: now,
    };
  }

  async #poll(): Promise<void> {
    if (!this.#running) return;
    await this.poll();
    if (!this.#running) return;
    this.#timer = setTimeout(() => void this.#poll(), this.#intervalMs);
    this.#timer.unref();
  }
}
