import { type AddressInfo, createServer, type Server, Socket } from "node:net";

/**
 * A TCP proxy in front of a server that counts the bytes the server sends back, and can hold them:
 * once `budget` bytes went through, nothing more is forwarded (the connection stays open and
 * silent, like a link that stalled) until `release()`. Tests use it to stop a transfer at a known
 * point and to measure what a resume fetches again.
 */
export class GateProxy {
  url = "";
  /** Bytes forwarded from the server to the clients since the last reset. */
  forwarded = 0;
  /** Forward at most this many bytes (since the last reset); Infinity: no limit. */
  budget = Number.POSITIVE_INFINITY;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #held: Array<() => void> = [];

  private constructor(target: { host: string; port: number }) {
    this.#server = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(target.port, target.host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("close", () => this.#sockets.delete(s));
        s.on("error", () => undefined);
      }
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
      client.pipe(upstream);
      upstream.on("data", (chunk: Buffer) => this.#forward(chunk, upstream, client));
    });
  }

  static async start(targetUrl: string): Promise<GateProxy> {
    const u = new URL(targetUrl);
    const proxy = new GateProxy({ host: u.hostname, port: Number(u.port) });
    await new Promise<void>((resolve) => proxy.#server.listen(0, "127.0.0.1", resolve));
    proxy.url = `http://127.0.0.1:${(proxy.#server.address() as AddressInfo).port}`;
    return proxy;
  }

  /** True once the budget is spent and bytes are being held back. */
  get holding(): boolean {
    return this.forwarded >= this.budget;
  }

  /** Lifts the budget and lets held connections flow again. */
  release(): void {
    this.budget = Number.POSITIVE_INFINITY;
    for (const resume of this.#held.splice(0)) resume();
  }

  reset(): void {
    this.forwarded = 0;
  }

  #forward(chunk: Buffer, upstream: Socket, client: Socket): void {
    const room = this.budget - this.forwarded;
    if (room >= chunk.length) {
      this.forwarded += chunk.length;
      if (!client.write(chunk)) {
        upstream.pause();
        client.once("drain", () => upstream.resume());
      }
      return;
    }
    // spend what is left of the budget, hold the rest until release()
    const head = chunk.subarray(0, Math.max(0, room));
    const tail = chunk.subarray(head.length);
    this.forwarded += head.length;
    if (head.length > 0) client.write(head);
    upstream.pause();
    this.#held.push(() => {
      if (client.destroyed) return;
      upstream.resume();
      this.#forward(tail, upstream, client);
    });
  }

  close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
