import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ChildHandle, REPO_ROOT, requireStoriesModel, startLlmWorker, tempRbeeDirs, waitFor } from "@rbee/testing";
import { count, type StreamTiming, timedStream } from "./sse-client.js";
import { printTable, quantile, round } from "./stats.js";

export interface QueenBenchOptions {
  rounds: number;
  maxTokens: number;
  concurrency: number[];
  /** Starts the queen with `node --cpu-prof`, its V8 profile written here. */
  cpuProfileDir?: string;
}

interface Side {
  ttft: number[];
  tokens: number;
  wallMs: number;
}

const PROMPTS = [
  "Once upon a time",
  "The little dog",
  "One day, Tom",
  "Lily and Ben",
  "The sun was",
  "In the park",
  "Mom said",
  "The big tree",
];

function tokensFrom(body: string, key: RegExp): number {
  const m = key.exec(body);
  return m ? Number(m[1]) : 0;
}

/**
 * The queen's own cost: the same streamed completions sent to a worker directly and through the
 * queen (OpenAI /v1/completions), alternating, at each concurrency. Reports time to first token
 * (p50, p99) and throughput, and what the queen adds to each. A bare Node proxy that forwards the
 * direct requests' bytes runs beside them as the floor: what any proxy in Node adds on this machine.
 */
export async function benchQueen(o: QueenBenchOptions) {
  const dirs = tempRbeeDirs("bench-queen");
  const queenMain = `import { runQueen } from "@rbee/queen"; await runQueen({ port: 0 });`;
  const profile = o.cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${o.cpuProfileDir}`] : [];
  const queen = new ChildHandle(process.execPath, [...profile, "--input-type=module", "-e", queenMain], {
    env: { ...dirs.env, RBEE_HEARTBEAT_INTERVAL_MS: "1000" },
    cwd: REPO_ROOT,
  });
  const ready = await queen.waitForLine(/^\{.*"msg":"queen ready".*\}$/m);
  const queenUrl = (JSON.parse(ready[0]) as { url: string }).url;
  const token = readFileSync(join(dirs.configDir, "cluster-token"), "utf8").trim();
  const worker = await startLlmWorker(
    [
      "--heartbeat-url",
      queenUrl,
      "--heartbeat-interval",
      "1",
      "--parallel",
      String(Math.max(...o.concurrency)),
      "--ctx-size",
      "512",
      "--model-id",
      "stories",
    ],
    { model: requireStoriesModel(), env: { RBEE_CLUSTER_TOKEN: token } },
  );
  const auth = { authorization: `Bearer ${token}` };
  // the floor: a bare Node proxy that forwards the direct requests' bytes (bare-proxy.ts)
  const proxy = new ChildHandle(process.execPath, [join(REPO_ROOT, "packages/bench/dist/bare-proxy.js"), worker.url]);
  const proxyUrl = (JSON.parse((await proxy.waitForLine(/^\{"url".*\}$/m))[0]) as { url: string }).url;
  await waitFor(async () => {
    const r = await fetch(`${queenUrl}/v1/models`);
    return ((await r.json()) as { data: Array<{ id: string }> }).data.some((m) => m.id === "stories")
      ? true
      : undefined;
  });

  const direct = (prompt: string) =>
    timedStream(
      `${worker.url}/v1/infer`,
      { prompt, max_tokens: o.maxTokens, temperature: 0, stream: true },
      (c) => count(c, "event: token"),
      auth,
    );
  const viaProxy = (prompt: string) =>
    timedStream(
      `${proxyUrl}/`,
      { prompt, max_tokens: o.maxTokens, temperature: 0, stream: true },
      (c) => count(c, "event: token"),
      auth,
    );
  const viaQueen = (prompt: string) =>
    timedStream(
      `${queenUrl}/v1/completions`,
      {
        model: "stories",
        prompt,
        max_tokens: o.maxTokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      },
      (c) => count(c, '"finish_reason":null'),
    );
  const directTokens = (t: StreamTiming) => tokensFrom(t.body, /"tokens_generated":(\d+)/);
  const queenTokens = (t: StreamTiming) => tokensFrom(t.body, /"completion_tokens":(\d+)/);

  const rows: Array<Record<string, string | number>> = [];
  const results: Array<Record<string, number>> = [];
  try {
    await direct(PROMPTS[0] as string);
    await viaQueen(PROMPTS[0] as string);
    await viaProxy(PROMPTS[0] as string);
    const send = { direct, queen: viaQueen, proxy: viaProxy };
    const orders = [
      ["direct", "queen", "proxy"],
      ["queen", "proxy", "direct"],
      ["proxy", "direct", "queen"],
    ] as const;
    for (const c of o.concurrency) {
      const sides: Record<keyof typeof send, Side> = {
        direct: { ttft: [], tokens: 0, wallMs: 0 },
        queen: { ttft: [], tokens: 0, wallMs: 0 },
        proxy: { ttft: [], tokens: 0, wallMs: 0 },
      };
      for (let r = 0; r < o.rounds; r++) {
        for (const side of orders[r % orders.length] as (typeof orders)[number]) {
          const t0 = performance.now();
          const runs = await Promise.all(
            Array.from({ length: c }, (_, i) => send[side](PROMPTS[(r + i) % PROMPTS.length] as string)),
          );
          const s = sides[side];
          s.wallMs += performance.now() - t0;
          for (const run of runs) {
            s.ttft.push(run.ttftMs);
            s.tokens += side === "queen" ? queenTokens(run) : directTokens(run);
          }
        }
      }
      const tps = (s: Side) => (s.tokens / s.wallMs) * 1000;
      const d = sides.direct;
      const q = sides.queen;
      const p = sides.proxy;
      const result = {
        concurrency: c,
        direct_ttft_p50_ms: round(quantile(d.ttft, 0.5)),
        queen_ttft_p50_ms: round(quantile(q.ttft, 0.5)),
        added_ttft_p50_ms: round(quantile(q.ttft, 0.5) - quantile(d.ttft, 0.5)),
        direct_ttft_p99_ms: round(quantile(d.ttft, 0.99)),
        queen_ttft_p99_ms: round(quantile(q.ttft, 0.99)),
        added_ttft_p99_ms: round(quantile(q.ttft, 0.99) - quantile(d.ttft, 0.99)),
        direct_tps: round(tps(d), 1),
        queen_tps: round(tps(q), 1),
        throughput_ratio: round(tps(q) / tps(d), 3),
        proxy_added_ttft_p50_ms: round(quantile(p.ttft, 0.5) - quantile(d.ttft, 0.5)),
        proxy_throughput_ratio: round(tps(p) / tps(d), 3),
      };
      results.push(result);
      rows.push({
        streams: c,
        "TTFT p50 direct/queen ms": `${result.direct_ttft_p50_ms} / ${result.queen_ttft_p50_ms}`,
        "added p50 ms": result.added_ttft_p50_ms,
        "TTFT p99 direct/queen ms": `${result.direct_ttft_p99_ms} / ${result.queen_ttft_p99_ms}`,
        "added p99 ms": result.added_ttft_p99_ms,
        "tok/s direct/queen": `${result.direct_tps} / ${result.queen_tps}`,
        ratio: result.throughput_ratio,
        "bare proxy: added p50 ms, ratio": `${result.proxy_added_ttft_p50_ms}, ${result.proxy_throughput_ratio}`,
      });
    }
  } finally {
    await proxy.stop();
    await worker.child.stop();
    await queen.stop();
  }
  printTable(rows);
  return results;
}
