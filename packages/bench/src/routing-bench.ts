import { join } from "node:path";
import { ChildHandle, REPO_ROOT, requireStoriesModel, startLlmWorker, waitFor } from "@rbee/testing";
import { closedLoop, keepAliveAgent, type LoopResult, postJson } from "./http-load.js";
import { cpuSeconds, type QueenProcess, sleep, startQueenProcess } from "./processes.js";
import { printTable, quantile, round } from "./stats.js";

export interface RoutingBenchOptions {
  workers: number;
  concurrency: number;
  /** Alternating rounds per side; each side is measured for roundMs per round. */
  rounds: number;
  roundMs: number;
  /** "echo": examples/echo-worker.mjs (the queen's own cost); "llm": real llm workers on stories260K. */
  kind: "echo" | "llm";
  /** Directory for a V8 CPU profile of the queen (node --cpu-prof), or none. */
  cpuProfileDir?: string;
}

export interface RoutingResult {
  kind: string;
  workers: number;
  concurrency: number;
  direct_rps: number;
  queen_rps: number;
  ratio: number;
  direct_p50_ms: number;
  queen_p50_ms: number;
  direct_p99_ms: number;
  queen_p99_ms: number;
  /** The queen's CPU time per routed request, from /proc. */
  queen_cpu_us_per_request: number;
  /** The floor: a bare Node proxy (bare-proxy.ts) forwarding the direct requests to the same workers. */
  proxy_rps: number;
  proxy_p50_ms: number;
  proxy_cpu_us_per_request: number;
  failed: number;
}

const PROMPT = "Once upon a time";

interface Started {
  url: string;
  stop: () => Promise<unknown>;
}

async function startEchoWorker(queen: QueenProcess): Promise<Started> {
  const child = new ChildHandle(process.execPath, [join(REPO_ROOT, "examples/echo-worker.mjs")], {
    env: {
      PORT: "0",
      RBEE_HEARTBEAT_URL: queen.url,
      RBEE_CLUSTER_TOKEN: queen.token,
      RBEE_LOG_LEVEL: "info",
    },
  });
  const ready = await child.waitForLine(/^\{.*"msg":"worker ready".*\}$/m, 60_000);
  return { url: (JSON.parse(ready[0]) as { url: string }).url, stop: () => child.stop() };
}

async function startStoriesWorker(queen: QueenProcess, parallel: number): Promise<Started> {
  const w = await startLlmWorker(
    [
      "--heartbeat-url",
      queen.url,
      "--threads",
      "1",
      "--parallel",
      String(parallel),
      "--ctx-size",
      String(64 * parallel),
      "--model-id",
      "stories",
    ],
    { model: requireStoriesModel(), env: { RBEE_CLUSTER_TOKEN: queen.token }, timeoutMs: 120_000 },
  );
  return { url: w.url, stop: () => w.child.stop() };
}

function add(into: LoopResult, r: LoopResult): void {
  into.ok += r.ok;
  into.failed += r.failed;
  into.seconds += r.seconds;
  into.latencies.push(...r.latencies);
  into.errors.push(...r.errors);
}

/**
 * Requests per second the queen routes to N hand-started workers (heartbeating to the queen) for a
 * one-token completion, against the same workers called directly (client i always on worker
 * i mod N), with the same closed-loop concurrency on keep-alive connections. Sides alternate so that
 * the machine's drift hits both. The queen's CPU per routed request is read from /proc.
 */
export async function benchRouting(o: RoutingBenchOptions): Promise<RoutingResult> {
  // the default heartbeat interval (5 s): the echo example heartbeats at the kit's default
  const profile = o.cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${o.cpuProfileDir}`] : [];
  const queen = await startQueenProcess(`bench-routing-${o.kind}`, {}, profile);
  const workers: Started[] = [];
  const stops: Array<() => Promise<unknown>> = [];
  try {
    const perWorker = Math.ceil(o.concurrency / o.workers);
    // started one by one: eight model loads at once on two cores only slow each other down
    for (let i = 0; i < o.workers; i++) {
      workers.push(o.kind === "echo" ? await startEchoWorker(queen) : await startStoriesWorker(queen, perWorker));
    }
    const model = o.kind === "echo" ? "echo" : "stories";
    await waitFor(
      async () => {
        const r = await fetch(`${queen.url}/v1/workers`, { headers: { authorization: `Bearer ${queen.token}` } });
        const body = (await r.json()) as { workers: Array<{ model: string; routable: boolean }> };
        return body.workers.filter((w) => w.model === model && w.routable).length >= o.workers ? true : undefined;
      },
      60_000,
      `${o.workers} routable ${model} workers on the queen`,
    );
    const auth = { authorization: `Bearer ${queen.token}` };
    const directAgent = keepAliveAgent(o.concurrency);
    const queenAgent = keepAliveAgent(o.concurrency);
    const direct = (client: number) =>
      postJson(
        `${(workers[client % workers.length] as Started).url}/v1/infer`,
        { prompt: PROMPT, max_tokens: 1, temperature: 0 },
        directAgent,
        auth,
      );
    const viaQueen = () =>
      postJson(`${queen.url}/v1/completions`, { model, prompt: PROMPT, max_tokens: 1, temperature: 0 }, queenAgent);
    const proxy = new ChildHandle(process.execPath, [
      join(REPO_ROOT, "packages/bench/dist/bare-proxy.js"),
      ...workers.map((w) => w.url),
    ]);
    stops.push(() => proxy.stop());
    const proxyUrl = (JSON.parse((await proxy.waitForLine(/^\{"url".*\}$/m))[0]) as { url: string }).url;
    const proxyAgent = keepAliveAgent(o.concurrency);
    const viaProxy = () =>
      postJson(`${proxyUrl}/`, { prompt: PROMPT, max_tokens: 1, temperature: 0 }, proxyAgent, auth);

    // warm-up: connections, JIT, the workers' first sequences
    await closedLoop(o.concurrency, 1500, direct);
    await closedLoop(o.concurrency, 1500, viaQueen);
    await closedLoop(o.concurrency, 1500, viaProxy);
    const empty = (): LoopResult => ({ ok: 0, failed: 0, seconds: 0, latencies: [], errors: [] });
    const d = empty();
    const q = empty();
    const p = empty();
    let queenCpu = 0;
    let proxyCpu = 0;
    const orders = [
      ["direct", "queen", "proxy"],
      ["queen", "proxy", "direct"],
      ["proxy", "direct", "queen"],
    ] as const;
    for (let r = 0; r < o.rounds; r++) {
      for (const side of orders[r % orders.length] as (typeof orders)[number]) {
        await sleep(250);
        if (side === "direct") add(d, await closedLoop(o.concurrency, o.roundMs, direct));
        else if (side === "queen") {
          const cpu0 = cpuSeconds(queen.child.pid);
          add(q, await closedLoop(o.concurrency, o.roundMs, viaQueen));
          queenCpu += cpuSeconds(queen.child.pid) - cpu0;
        } else {
          const cpu0 = cpuSeconds(proxy.pid);
          add(p, await closedLoop(o.concurrency, o.roundMs, viaProxy));
          proxyCpu += cpuSeconds(proxy.pid) - cpu0;
        }
      }
    }
    directAgent.destroy();
    queenAgent.destroy();
    proxyAgent.destroy();
    for (const e of [...d.errors, ...q.errors, ...p.errors].slice(0, 3)) console.log(`(failed request: ${e})`);
    const result: RoutingResult = {
      kind: o.kind,
      workers: o.workers,
      concurrency: o.concurrency,
      direct_rps: round(d.ok / d.seconds, 0),
      queen_rps: round(q.ok / q.seconds, 0),
      ratio: round(q.ok / q.seconds / (d.ok / d.seconds), 3),
      direct_p50_ms: round(quantile(d.latencies, 0.5)),
      queen_p50_ms: round(quantile(q.latencies, 0.5)),
      direct_p99_ms: round(quantile(d.latencies, 0.99)),
      queen_p99_ms: round(quantile(q.latencies, 0.99)),
      queen_cpu_us_per_request: round((queenCpu / Math.max(1, q.ok)) * 1e6, 0),
      proxy_rps: round(p.ok / p.seconds, 0),
      proxy_p50_ms: round(quantile(p.latencies, 0.5)),
      proxy_cpu_us_per_request: round((proxyCpu / Math.max(1, p.ok)) * 1e6, 0),
      failed: d.failed + q.failed + p.failed,
    };
    printTable([
      {
        workers: `${o.workers} × ${o.kind}`,
        clients: o.concurrency,
        "req/s direct / queen": `${result.direct_rps} / ${result.queen_rps}`,
        ratio: result.ratio,
        "p50 ms direct / queen": `${result.direct_p50_ms} / ${result.queen_p50_ms}`,
        "p99 ms direct / queen": `${result.direct_p99_ms} / ${result.queen_p99_ms}`,
        "queen CPU µs/req": result.queen_cpu_us_per_request,
        "bare proxy req/s, p50 ms, CPU µs/req": `${result.proxy_rps}, ${result.proxy_p50_ms}, ${result.proxy_cpu_us_per_request}`,
        failed: result.failed,
      },
    ]);
    return result;
  } finally {
    await Promise.all([...stops.map((stop) => stop()), ...workers.map((w) => w.stop())]);
    await queen.child.stop();
  }
}
