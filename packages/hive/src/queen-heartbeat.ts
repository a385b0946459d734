import { HeartbeatReply, HiveCommand, type HiveHeartbeat, parseJson, safeParse } from "@rbee/contract";
import { type Logger, readBody, sendRequest, toStatusError } from "@rbee/server-kit";
import type { HiveMetrics } from "./hive-metrics.js";

/** Changes that come together (a crash and its restart scheduling) ride in one heartbeat. */
export const DEBOUNCE_MS = 50;
/** Load changes (a worker turning Busy or Ready again) wait longer, so that traffic does not flood the queen. */
export const LOAD_DEBOUNCE_MS = 1000;
const FIRST_RETRY_MS = 250;
/**
 * Before the queen was ever reached (it is usually starting beside this hive: `rbee up` starts both
 * at once) the first heartbeat is retried every 100 ms for its first 5 s, so that the hive joins
 * within 100 ms of the queen listening instead of after a backoff step.
 */
const STARTUP_RETRY_MS = 100;
const STARTUP_RETRIES = 50;

export interface QueenHeartbeatOptions {
  queenUrl: string;
  token: string;
  intervalMs: number;
  payload: () => Promise<HiveHeartbeat>;
  /** Takes each command of the queen's reply; one this hive does not know is logged and skipped. */
  onCommand: (command: HiveCommand) => void;
  log: Logger;
  metrics: HiveMetrics;
}

/**
 * Sends the hive's heartbeat to the queen: every interval, ~50 ms after `beatSoon()` (a worker
 * changed status) and within a second after `beatSoon(LOAD_DEBOUNCE_MS)` (Ready ⇄ Busy). A failed post is retried with backoff (250 ms doubling up to the interval;
 * every 100 ms for the first 5 s before the queen was ever reached) and logged once per outage: a
 * queen that is not up yet is normal.
 */
export class QueenHeartbeat {
  readonly #o: QueenHeartbeatOptions;
  readonly #endpoint: string;
  #running = false;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #again: number | undefined;
  #dueAt = 0;
  #failures = 0;
  #everDelivered = false;
  /** Heartbeats the queen acknowledged. */
  delivered = 0;

  constructor(options: QueenHeartbeatOptions) {
    this.#o = options;
    this.#endpoint = `${options.queenUrl}/v1/hive-heartbeat`;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(0);
  }

  /** Sends a heartbeat within `delayMs` (debounced), e.g. after a worker changed status. */
  beatSoon(delayMs = DEBOUNCE_MS): void {
    if (!this.#running) return;
    if (this.#inFlight !== undefined) {
      this.#again = Math.min(this.#again ?? delayMs, delayMs);
      return;
    }
    this.#schedule(delayMs, true);
  }

  /** Stops the schedule and waits for a heartbeat on the wire. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
  }

  /**
   * One last heartbeat (best effort, short timeout), so that the queen's last word is the final
   * state, and that this hive stops (`stopping: true`): it is gone from routing at once.
   */
  async sendFinal(timeoutMs = 1000): Promise<void> {
    try {
      await this.#post(timeoutMs, true);
    } catch {
      // the queen may be gone
    }
  }

  #schedule(delayMs: number, onlyIfSooner = false): void {
    if (onlyIfSooner && this.#timer !== undefined && this.#dueAt <= Date.now() + delayMs) return;
    clearTimeout(this.#timer);
    this.#dueAt = Date.now() + delayMs;
    this.#timer = setTimeout(() => this.#beat(), delayMs);
    this.#timer.unref();
  }

  #beat(): void {
    this.#timer = undefined;
    this.#inFlight = this.#beatOnce().finally(() => {
      this.#inFlight = undefined;
    });
  }

  async #beatOnce(): Promise<void> {
    let delay = this.#o.intervalMs;
    try {
      await this.#post(Math.max(1000, Math.min(this.#o.intervalMs, 10_000)));
      this.delivered++;
      this.#o.metrics.queenHeartbeats.inc({ outcome: "ok" });
      if (this.#failures > 0 || !this.#everDelivered) {
        this.#o.log.info({ queen_url: this.#o.queenUrl, failures: this.#failures }, "queen reached");
      }
      this.#failures = 0;
      this.#everDelivered = true;
    } catch (err) {
      this.#failures++;
      this.#o.metrics.queenHeartbeats.inc({ outcome: "failed" });
      delay =
        !this.#everDelivered && this.#failures <= STARTUP_RETRIES
          ? Math.min(this.#o.intervalMs, STARTUP_RETRY_MS)
          : Math.min(this.#o.intervalMs, FIRST_RETRY_MS * 2 ** Math.min(this.#failures - 1, 10));
      if (this.#failures === 1) {
        const facts = { queen_url: this.#o.queenUrl, err: err instanceof Error ? err.message : String(err) };
        if (this.#everDelivered) this.#o.log.warn(facts, "queen unreachable; retrying (logged once per outage)");
        else this.#o.log.info(facts, "queen not reachable yet; retrying (normal while it starts)");
      }
    }
    if (!this.#running) return;
    if (this.#again !== undefined) {
      delay = Math.min(delay, this.#again);
      this.#again = undefined;
    }
    this.#schedule(delay);
  }

  async #post(timeoutMs: number, stopping = false): Promise<void> {
    const body = stopping ? { ...(await this.#o.payload()), stopping: true } : await this.#o.payload();
    const res = await sendRequest(this.#endpoint, {
      method: "POST",
      body,
      token: this.#o.token,
      timeoutMs,
      what: "the queen",
    });
    if ((res.statusCode ?? 500) >= 400) throw await toStatusError(res, this.#endpoint, "the queen");
    this.#handleReply(await readBody(res));
  }

  /** The queen's reply, read leniently: an older queen sends no commands, a newer one some this hive does not know. */
  #handleReply(text: string): void {
    const json = parseJson(text);
    const reply = json.ok ? safeParse(HeartbeatReply, json.value, "the queen's heartbeat reply") : undefined;
    for (const raw of reply?.ok ? reply.value.commands : []) {
      const command = safeParse(HiveCommand, raw, "a command from the queen");
      if (command.ok) this.#o.onCommand(command.value);
      else this.#o.log.debug({ command: raw }, "skipping a command from the queen this hive does not know");
    }
  }
}
