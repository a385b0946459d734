import { HeartbeatCommand, HeartbeatReply, safeParse, type WorkerHeartbeat } from "@rbee/contract";
import { type Logger, readBody, sendRequest } from "@rbee/server-kit";

export interface HeartbeatTaskOptions {
  /** Base URL of the receiver (a hive or the queen); the task posts to `<url>/v1/worker-heartbeat`. */
  url: string;
  intervalMs: number;
  /** Shut down when no heartbeat got through for this long (a dead hive leaves no orphans). 0 disables. */
  orphanTimeoutMs: number;
  token?: string;
  payload: () => WorkerHeartbeat;
  onCommand: (command: HeartbeatCommand) => void;
  onOrphaned: (sinceLastAckMs: number) => void;
  log: Logger;
}

/**
 * Posts the worker's heartbeat every interval and at once on `beatNow()`. A failed post is retried
 * with backoff (250 ms doubling up to the interval). Commands in replies are handed to `onCommand`;
 * an unknown command is logged and skipped.
 */
export class HeartbeatTask {
  #o: HeartbeatTaskOptions;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #inFlight = false;
  #current: Promise<void> | undefined;
  #pending = false;
  /** A beatSoon that came while a beat was in flight: the next one goes out within this. */
  #soonMs: number | undefined;
  #lastSent = 0;
  #nextAt = 0;
  #failures = 0;
  #lastAck: number;
  #orphaned = false;
  #endpoint: string;
  /** Heartbeats acknowledged so far. */
  acked = 0;

  constructor(options: HeartbeatTaskOptions) {
    this.#o = options;
    this.#endpoint = new URL("/v1/worker-heartbeat", options.url).toString();
    this.#lastAck = Date.now();
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#lastAck = Date.now();
    void this.#beat();
  }

  stop(): void {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Sends a heartbeat now (after the one in flight, if any). */
  beatNow(): void {
    if (!this.#running) return;
    if (this.#inFlight) {
      this.#pending = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    void this.#beat();
  }

  /**
   * Makes the next heartbeat go out within `ms` of the last one, not at once: for news the receiver
   * may learn a little late (Ready and Busy, which flip with every request under load; a beat for
   * each flip would cost the queen more than routing the request).
   */
  beatSoon(ms: number): void {
    if (!this.#running) return;
    if (this.#inFlight) {
      this.#soonMs = Math.min(this.#soonMs ?? ms, ms);
      return;
    }
    const at = Math.max(Date.now(), this.#lastSent + ms);
    if (this.#timer !== undefined && this.#nextAt <= at) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#schedule(at - Date.now());
  }

  #schedule(delay: number): void {
    this.#nextAt = Date.now() + delay;
    this.#timer = setTimeout(() => void this.#beat(), delay);
    this.#timer.unref();
  }

  #beat(): Promise<void> {
    this.#current = this.#beatOnce();
    return this.#current;
  }

  /**
   * Stops the schedule, waits for a heartbeat on the wire, then sends one last one with a short
   * timeout, so that the receiver's last word from this worker is its final status.
   */
  async stopWithFinal(timeoutMs = 1000): Promise<void> {
    this.stop();
    await this.#current;
    try {
      await this.#post(timeoutMs);
    } catch {
      // the receiver may be gone; the final beat is best effort
    }
  }

  async #beatOnce(): Promise<void> {
    this.#timer = undefined;
    this.#inFlight = true;
    this.#lastSent = Date.now();
    let delay = this.#o.intervalMs;
    try {
      const reply = await this.#post(Math.max(1000, Math.min(this.#o.intervalMs, 10_000)));
      this.#lastAck = Date.now();
      this.acked++;
      if (this.#failures > 0) this.#o.log.info({ failures: this.#failures }, "heartbeat target reachable again");
      this.#failures = 0;
      this.#handleReply(reply);
    } catch (err) {
      this.#failures++;
      delay = Math.min(this.#o.intervalMs, 250 * 2 ** Math.min(this.#failures - 1, 10));
      const since = Date.now() - this.#lastAck;
      if (this.#failures === 1 || this.#failures % 10 === 0) {
        this.#o.log.warn(
          { err: (err as Error).message, failures: this.#failures, since_last_ack_ms: since, url: this.#endpoint },
          "heartbeat failed",
        );
      }
      if (this.#o.orphanTimeoutMs > 0 && since >= this.#o.orphanTimeoutMs && !this.#orphaned) {
        this.#orphaned = true;
        this.#o.onOrphaned(since);
      }
    } finally {
      this.#inFlight = false;
    }
    if (!this.#running) return;
    if (this.#pending) {
      this.#pending = false;
      delay = 0;
    }
    if (this.#soonMs !== undefined) {
      delay = Math.min(delay, this.#soonMs);
      this.#soonMs = undefined;
    }
    this.#schedule(delay);
  }

  async #post(timeoutMs: number): Promise<unknown> {
    // server-kit's client: https with the extra CA (RBEE_TLS_CA) when the hive serves TLS
    const res = await sendRequest(this.#endpoint, {
      method: "POST",
      body: this.#o.payload(),
      token: this.#o.token,
      timeoutMs,
      what: "the heartbeat target",
    });
    const text = await readBody(res);
    const status = res.statusCode ?? 500;
    if (status >= 400) throw new Error(`HTTP ${status}: ${text.slice(0, 200)}`);
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`reply is not JSON: ${text.slice(0, 200)}`);
    }
  }

  #handleReply(body: unknown): void {
    const reply = safeParse(HeartbeatReply, body, "heartbeat reply");
    if (!reply.ok) {
      this.#o.log.warn({ err: reply.error.message }, "ignoring malformed heartbeat reply");
      return;
    }
    for (const raw of reply.value.commands) {
      const cmd = safeParse(HeartbeatCommand, raw, "heartbeat command");
      if (!cmd.ok) {
        this.#o.log.warn({ command: raw, err: cmd.error.message }, "ignoring unknown heartbeat command");
        continue;
      }
      this.#o.onCommand(cmd.value);
    }
  }
}
