import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { HiveHeartbeat, type HiveWorkerReport } from "@rbee/contract";
import { waitFor } from "@rbee/testing";

export interface ReceivedBeat {
  heartbeat: HiveHeartbeat;
  authorization: string | undefined;
  at: number;
}

/** A stand-in queen: records every hive heartbeat (validated against the contract) and acknowledges it. */
export class FakeQueen {
  readonly beats: ReceivedBeat[] = [];
  /** Bodies that did not match HiveHeartbeat, with the reason. */
  readonly invalid: string[] = [];
  url = "";
  /** While set, every heartbeat is answered with this status (a queen that is down or refuses). */
  failWith: number | undefined;
  /** Requests answered with `failWith`. */
  refused = 0;
  /** Commands sent back in the reply to every heartbeat (as a real queen sends set_keep_alive). */
  commands: unknown[] = [];
  #server: Server;

  private constructor() {
    this.#server = createServer((req, res) => {
      void readText(req).then((text) => {
        if (req.method !== "POST" || req.url !== "/v1/hive-heartbeat") {
          res.writeHead(404).end();
          return;
        }
        if (this.failWith !== undefined) {
          this.refused++;
          res.writeHead(this.failWith, { "content-type": "application/json" });
          res.end(
            JSON.stringify({
              error: { message: "down for the test", type: "server_error", code: "down", param: null },
            }),
          );
          return;
        }
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        const parsed = HiveHeartbeat.safeParse(body);
        if (parsed.success) {
          this.beats.push({ heartbeat: parsed.data, authorization: req.headers.authorization, at: Date.now() });
        } else {
          this.invalid.push(parsed.error.message);
        }
        res
          .writeHead(200, { "content-type": "application/json" })
          .end(JSON.stringify({ ack: true, commands: this.commands }));
      });
    });
  }

  static async start(): Promise<FakeQueen> {
    const queen = new FakeQueen();
    await new Promise<void>((resolve) => queen.#server.listen(0, "127.0.0.1", resolve));
    queen.url = `http://127.0.0.1:${(queen.#server.address() as AddressInfo).port}`;
    return queen;
  }

  get last(): HiveHeartbeat | undefined {
    return this.beats.at(-1)?.heartbeat;
  }

  /** Waits for a heartbeat (received after `since`, a count of beats) whose report of `workerId` matches. */
  waitForWorker(
    workerId: string,
    match: (w: HiveWorkerReport) => boolean,
    options: { timeoutMs?: number; since?: number; what?: string } = {},
  ): Promise<{ heartbeat: HiveHeartbeat; worker: HiveWorkerReport }> {
    return waitFor(
      () => {
        for (const beat of this.beats.slice(options.since ?? 0)) {
          const worker = beat.heartbeat.workers.find((w) => w.worker_id === workerId);
          if (worker !== undefined && match(worker)) return { heartbeat: beat.heartbeat, worker };
        }
        return undefined;
      },
      options.timeoutMs ?? 15_000,
      options.what ?? `a hive heartbeat in which worker ${workerId} matches`,
    );
  }

  /** Waits for a heartbeat (after `since`) that matches. */
  waitFor(match: (hb: HiveHeartbeat) => boolean, timeoutMs = 15_000, since = 0): Promise<HiveHeartbeat> {
    return waitFor(
      () => this.beats.slice(since).find((b) => match(b.heartbeat))?.heartbeat,
      timeoutMs,
      "a matching hive heartbeat",
    );
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
