import { Agent, request } from "node:http";

export interface Reply {
  status: number;
  body: string;
}

/**
 * POSTs JSON with node:http on the given keep-alive agent and resolves with the status and body,
 * never rejecting on an HTTP status (a refused or reset connection is status 0, its message the body).
 */
export function postJson(
  url: string,
  body: unknown,
  agent: Agent,
  headers: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<Reply> {
  const payload = JSON.stringify(body);
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: "POST", agent, timeout: timeoutMs, headers: { "content-type": "application/json", ...headers } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on("error", (err) => resolve({ status: 0, body: err.message }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (err) => resolve({ status: 0, body: err.message }));
    req.end(payload);
  });
}

export const keepAliveAgent = (maxSockets: number) => new Agent({ keepAlive: true, maxSockets });

export interface LoopResult {
  ok: number;
  failed: number;
  seconds: number;
  /** Latency of every successful request, ms. */
  latencies: number[];
  /** The first few failures, for the report. */
  errors: string[];
}

/**
 * A closed loop: `concurrency` clients, each sending its next request as soon as the last one is
 * answered, for `durationMs`. `send(client, seq)` makes one request.
 */
export async function closedLoop(
  concurrency: number,
  durationMs: number,
  send: (client: number, seq: number) => Promise<Reply>,
): Promise<LoopResult> {
  const result: LoopResult = { ok: 0, failed: 0, seconds: 0, latencies: [], errors: [] };
  const t0 = performance.now();
  const end = t0 + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, client) => {
      for (let seq = 0; performance.now() < end; seq++) {
        const start = performance.now();
        const reply = await send(client, seq);
        if (reply.status === 200) {
          result.ok++;
          result.latencies.push(performance.now() - start);
        } else {
          result.failed++;
          if (result.errors.length < 3) result.errors.push(`${reply.status}: ${reply.body.slice(0, 200)}`);
        }
      }
    }),
  );
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}
