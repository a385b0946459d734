import { createConnection, createServer, type Server, type Socket } from "node:net";

/** One forwarded address: connections to `listen` go to `target`. */
export interface ForwardedPort {
  host: string;
  port: number;
  url: string;
}

interface Pair {
  client: Socket;
  upstream: Socket | undefined;
}

/**
 * A stretch of network between processes on loopback that a test can cut and restore: TCP ports
 * forwarded to others, all going through this one link.
 *
 * `cut()` behaves like a pulled cable, not like a process that died: nothing is closed or reset.
 * Bytes on open connections stop moving (both sides see silence, so only their timeouts notice),
 * and new connections are accepted but go nowhere. `restore()` lets the stalled bytes through again
 * and forwards new connections as before; `cut("reset")` instead destroys every open connection.
 */
export class NetworkLink {
  #servers: Server[] = [];
  #pairs = new Set<Pair>();
  #cut = false;

  /** Whether the link is cut now. */
  get isCut(): boolean {
    return this.#cut;
  }

  /** Connections open through the link (stalled ones included). */
  get connections(): number {
    return this.#pairs.size;
  }

  /**
   * Listens on `listenHost:listenPort` (port 0: a free one) and forwards every connection to
   * `targetHost:targetPort` through the link.
   */
  async forward(o: {
    listenHost?: string;
    listenPort?: number;
    targetHost?: string;
    targetPort: number;
  }): Promise<ForwardedPort> {
    const targetHost = o.targetHost ?? "127.0.0.1";
    const server = createServer((client) => this.#accept(client, targetHost, o.targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: o.listenHost ?? "127.0.0.1", port: o.listenPort ?? 0, exclusive: true }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.#servers.push(server);
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("the link did not get a TCP address");
    const host = address.address;
    return { host, port: address.port, url: `http://${host.includes(":") ? `[${host}]` : host}:${address.port}` };
  }

  /** Stops the traffic: "stall" (default) freezes it like a pulled cable, "reset" closes every connection. */
  cut(mode: "stall" | "reset" = "stall"): void {
    this.#cut = true;
    for (const pair of [...this.#pairs]) {
      if (mode === "reset") this.#drop(pair);
      else {
        pair.client.pause();
        pair.upstream?.pause();
      }
    }
  }

  /** Lets traffic through again: stalled connections move on, new ones are forwarded. */
  restore(): void {
    this.#cut = false;
    for (const pair of [...this.#pairs]) {
      if (pair.upstream === undefined) {
        // accepted while cut: its target was never dialled; the client retries on a new connection
        this.#drop(pair);
        continue;
      }
      pair.client.resume();
      pair.upstream.resume();
    }
  }

  /** Closes every listener and connection. */
  async close(): Promise<void> {
    for (const pair of [...this.#pairs]) this.#drop(pair);
    await Promise.all(this.#servers.map((s) => new Promise((r) => s.close(r))));
    this.#servers = [];
  }

  #accept(client: Socket, host: string, port: number): void {
    const pair: Pair = { client, upstream: undefined };
    this.#pairs.add(pair);
    client.on("error", () => this.#drop(pair));
    client.on("close", () => this.#drop(pair));
    if (this.#cut) {
      client.pause(); // a black hole: the connection is there, nothing comes back
      return;
    }
    const upstream = createConnection({ host, port });
    pair.upstream = upstream;
    upstream.on("error", () => this.#drop(pair));
    upstream.on("close", () => this.#drop(pair));
    client.on("data", (chunk) => this.#relay(pair, upstream, chunk));
    upstream.on("data", (chunk) => this.#relay(pair, client, chunk));
    client.on("end", () => upstream.end());
    upstream.on("end", () => client.end());
  }

  /** Writes through, with backpressure: the reading side pauses while the writing side is full. */
  #relay(pair: Pair, to: Socket, chunk: Buffer): void {
    const from = to === pair.client ? pair.upstream : pair.client;
    if (!to.write(chunk)) {
      from?.pause();
      to.once("drain", () => {
        if (!this.#cut) from?.resume();
      });
    }
  }

  #drop(pair: Pair): void {
    if (!this.#pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}
