import { RbeeError } from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import { EngineClient } from "./engine-client.js";
import { type EngineOnPortOptions, type EngineProcess, startEngineOnFreePort } from "./engine-process.js";

/**
 * The engine behind an adapter, which either starts it (on a free loopback port, tied to its own
 * life) or attaches to one already running at a URL, and then talks to it through one EngineClient.
 * `ready()` hands out that client while the engine can take requests; `close()` stops an engine the
 * adapter started (an attached one is left running).
 */
export class EngineEndpoint {
  /** The engine's name in logs and errors: "ollama". */
  readonly name: string;
  /** The engine's version, as the adapter read it. */
  version = "unknown";
  #baseUrl = "";
  #client: EngineClient | undefined;
  #process: EngineProcess | undefined;
  #closed = false;

  constructor(name: string) {
    this.name = name;
  }

  /** Where the engine answers (empty before `open`). */
  get baseUrl(): string {
    return this.#baseUrl;
  }

  /** The engine's process, when the adapter started it. */
  get process(): EngineProcess | undefined {
    return this.#process;
  }

  /** "start" when the adapter runs the engine, "attach" when it talks to one already running. */
  get mode(): "start" | "attach" {
    return this.#process === undefined ? "attach" : "start";
  }

  /** The client from `open` until `close` (for polls that tolerate an engine that does not answer). */
  get client(): EngineClient | undefined {
    return this.#closed ? undefined : this.#client;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** What the adapter's "serving" log line says of the engine. */
  facts(): { url: string; version: string; mode: "start" | "attach"; engine_pid: number | undefined } {
    return { url: this.#baseUrl, version: this.version, mode: this.mode, engine_pid: this.#process?.pid };
  }

  /**
   * Starts the engine when `start` is given (see startEngineOnFreePort: it resolves once the engine
   * is ready, and throws EngineStartError otherwise), else attaches to `url`; returns the client.
   */
  async open(
    o: { start?: EngineOnPortOptions; url: string },
    ctx: { signal: AbortSignal; log: Logger; fail(error: Error): void },
  ): Promise<EngineClient> {
    if (o.start !== undefined) {
      const started = await startEngineOnFreePort(o.start, ctx);
      this.#process = started.process;
      this.#baseUrl = started.baseUrl;
    } else {
      this.#baseUrl = o.url.replace(/\/+$/, "");
    }
    this.#client = new EngineClient(this.#baseUrl, this.name);
    return this.#client;
  }

  /**
   * The client, while the engine can take requests.
   * @throws RbeeError (503 `not_ready`, retryable) before `open`, after `close`, or while a started
   *   engine is not ready.
   */
  ready(): EngineClient {
    if (
      this.#client === undefined ||
      this.#closed ||
      (this.#process !== undefined && this.#process.state !== "ready")
    ) {
      throw new RbeeError(`${this.name} is not running`, { statusCode: 503, code: "not_ready", retryable: true });
    }
    return this.#client;
  }

  /** Stops the engine when the adapter started it. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#process?.stop();
  }
}
