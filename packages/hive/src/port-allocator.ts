import { createServer } from "node:net";
import { RbeeError } from "@rbee/contract";

/** True when `host:port` can be bound right now (probed by binding it briefly). */
export function isPortFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once("error", () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/**
 * Hands out worker ports: the first free one from `first` upward that no worker of this hive holds.
 * Allocations run one at a time, so two spawns never get the same port.
 */
export class PortAllocator {
  readonly #first: number;
  readonly #host: string;
  readonly #held = new Set<number>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(first: number, host: string) {
    this.#first = first;
    this.#host = host;
  }

  /** Ports held by workers of this hive. */
  get held(): ReadonlySet<number> {
    return this.#held;
  }

  /** Finds and holds a free port. */
  allocate(): Promise<number> {
    const run = this.#queue.then(() => this.#find());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Holds a port a worker already uses (an adopted worker). */
  hold(port: number): void {
    this.#held.add(port);
  }

  release(port: number): void {
    this.#held.delete(port);
  }

  /** Whether a held port can still be bound (nobody else took it while its worker was down). */
  isFree(port: number): Promise<boolean> {
    return isPortFree(port, this.#host);
  }

  async #find(): Promise<number> {
    for (let port = this.#first; port <= 65535; port++) {
      if (this.#held.has(port)) continue;
      if (await isPortFree(port, this.#host)) {
        this.#held.add(port);
        return port;
      }
    }
    throw new RbeeError(`no free port for a worker from ${this.#first} to 65535 on ${this.#host}`, {
      statusCode: 503,
      code: "no_free_port",
    });
  }
}
