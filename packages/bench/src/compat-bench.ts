import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ChildHandle, REPO_ROOT, requireStoriesModel, startLlmWorker, tempRbeeDirs, waitFor } from "@rbee/testing";
import { cpuSeconds } from "./processes.js";
import { count, type StreamTiming, timedStream } from "./sse-client.js";
import { printTable, quantile, round } from "./stats.js";

export interface CompatBenchOptions {
  rounds: number;
  maxTokens: number;
  concurrency: number[];
}

type Api = "openai" | "ollama" | "anthropic";
const APIS: readonly Api[] = ["openai", "ollama", "anthropic"];
/** Every order of the three, taken in turn: each API runs first, second and third, after each other one, equally often. */
const ORDERS: ReadonlyArray<readonly Api[]> = [
  ["openai", "ollama", "anthropic"],
  ["ollama", "anthropic", "openai"],
  ["anthropic", "openai", "ollama"],
  ["openai", "anthropic", "ollama"],
  ["anthropic", "ollama", "openai"],
  ["ollama", "openai", "anthropic"],
];

const PROMPTS = [
  "Tell me a story about a dog.",
  "What did Lily find in the park?",
  "Tell me about the big tree.",
  "Why was Tom sad?",
];

function number(body: string, key: RegExp): number {
  let last = 0;
  for (const m of body.matchAll(key)) last = Number(m[1]);
  return last;
}

export interface CompatResult {
  concurrency: number;
  api: Api;
  ttft_p50_ms: number;
  ttft_p99_ms: number;
  added_ttft_p50_ms_vs_openai: number;
  added_ttft_p99_ms_vs_openai: number;
  ttft_p50_ratio_vs_openai: number;
  tps: number;
  throughput_ratio_vs_openai: number;
  /** The queen process's CPU time per request (user + system), heartbeats included. */
  queen_cpu_ms_per_request: number;
  queen_cpu_ratio_vs_openai: number;
}

interface Side {
  ttft: number[];
  tokens: number;
  wallMs: number;
  cpuSeconds: number;
  requests: number;
}

/**
 * What the Ollama (`/api/chat`, NDJSON) and Anthropic (`/v1/messages`, SSE) routes cost against the
 * OpenAI route (`/v1/chat/completions`): the same streamed chats through the same queen to the same
 * worker, the three APIs in each of their six orders in turn. Reports time to first token (p50, p99), what
 * each API adds to it over OpenAI's, throughput relative to OpenAI's, and the queen's CPU time per
 * request (the figure least moved by other load on a shared machine: it counts only the queen's work).
 */
export async function benchCompat(o: CompatBenchOptions) {
  const dirs = tempRbeeDirs("bench-compat");
  const queenMain = `import { runQueen } from "@rbee/queen"; await runQueen({ port: 0 });`;
  const queen = new ChildHandle(process.execPath, ["--input-type=module", "-e", queenMain], {
    env: { ...dirs.env, RBEE_HEARTBEAT_INTERVAL_MS: "1000" },
    cwd: REPO_ROOT,
  });
  const ready = await queen.waitForLine(/^\{.*"msg":"queen ready".*\}$/m);
  const url = (JSON.parse(ready[0]) as { url: string }).url;
  const token = readFileSync(join(dirs.configDir, "cluster-token"), "utf8").trim();
  const worker = await startLlmWorker(
    [
      "--heartbeat-url",
      url,
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
  await waitFor(async () => {
    const r = await fetch(`${url}/api/tags`);
    return ((await r.json()) as { models: Array<{ name: string }> }).models.length > 0 ? true : undefined;
  });

  // every request's text is new (a counter leads it), so that no API finds another's prompt in the
  // worker's cache: each pays the same prompt evaluation
  let n = 0;
  const messages = (prompt: string) => [{ role: "user", content: `${++n}. ${prompt}` }];
  const call: Record<Api, (prompt: string) => Promise<StreamTiming>> = {
    openai: (prompt) =>
      timedStream(
        `${url}/v1/chat/completions`,
        {
          model: "stories",
          messages: messages(prompt),
          max_tokens: o.maxTokens,
          temperature: 0,
          stream: true,
          stream_options: { include_usage: true },
        },
        (c) => count(c, '"delta":{"content":"'),
      ),
    ollama: (prompt) =>
      timedStream(
        `${url}/api/chat`,
        {
          model: "stories",
          messages: messages(prompt),
          options: { num_predict: o.maxTokens, temperature: 0 },
          stream: true,
        },
        (c) => count(c, '"done":false'),
      ),
    anthropic: (prompt) =>
      timedStream(
        `${url}/v1/messages`,
        { model: "stories", messages: messages(prompt), max_tokens: o.maxTokens, temperature: 0, stream: true },
        (c) => count(c, '"text_delta"'),
      ),
  };
  const tokens: Record<Api, (t: StreamTiming) => number> = {
    openai: (t) => number(t.body, /"completion_tokens":(\d+)/g),
    ollama: (t) => number(t.body, /"eval_count":(\d+)/g),
    anthropic: (t) => number(t.body, /"output_tokens":(\d+)/g),
  };

  const rows: Array<Record<string, string | number>> = [];
  const results: CompatResult[] = [];
  try {
    for (const api of APIS) await call[api](PROMPTS[0] as string);
    for (const c of o.concurrency) {
      const sides = Object.fromEntries(
        APIS.map((a) => [a, { ttft: [], tokens: 0, wallMs: 0, cpuSeconds: 0, requests: 0 } as Side]),
      ) as Record<Api, Side>;
      for (let r = 0; r < o.rounds; r++) {
        const order = ORDERS[r % ORDERS.length] as readonly Api[];
        for (const api of order) {
          // a block of at least 4 requests: the queen's CPU time is read in 10 ms ticks (/proc), so
          // that the tick's rounding stays small against what the block costs
          const cpu0 = cpuSeconds(queen.pid);
          const s = sides[api];
          for (let b = 0; b < Math.ceil(4 / c); b++) {
            const t0 = performance.now();
            const runs = await Promise.all(
              Array.from({ length: c }, (_, i) => call[api](PROMPTS[(r + b + i) % PROMPTS.length] as string)),
            );
            s.wallMs += performance.now() - t0;
            s.requests += c;
            for (const run of runs) {
              s.ttft.push(run.ttftMs);
              s.tokens += tokens[api](run);
            }
          }
          s.cpuSeconds += cpuSeconds(queen.pid) - cpu0;
        }
      }
      const tps = (s: Side) => (s.tokens / s.wallMs) * 1000;
      const cpuMs = (s: Side) => (s.cpuSeconds * 1000) / s.requests;
      const base = sides.openai;
      for (const api of APIS) {
        const s = sides[api];
        const result: CompatResult = {
          concurrency: c,
          api,
          ttft_p50_ms: round(quantile(s.ttft, 0.5)),
          ttft_p99_ms: round(quantile(s.ttft, 0.99)),
          added_ttft_p50_ms_vs_openai: round(quantile(s.ttft, 0.5) - quantile(base.ttft, 0.5)),
          added_ttft_p99_ms_vs_openai: round(quantile(s.ttft, 0.99) - quantile(base.ttft, 0.99)),
          ttft_p50_ratio_vs_openai: round(quantile(s.ttft, 0.5) / quantile(base.ttft, 0.5), 3),
          tps: round(tps(s), 1),
          throughput_ratio_vs_openai: round(tps(s) / tps(base), 3),
          queen_cpu_ms_per_request: round(cpuMs(s)),
          queen_cpu_ratio_vs_openai: round(cpuMs(s) / cpuMs(base), 3),
        };
        results.push(result);
        rows.push({
          streams: c,
          api,
          "TTFT p50 / p99 ms": `${result.ttft_p50_ms} / ${result.ttft_p99_ms}`,
          "added p50 / p99 ms vs OpenAI": `${result.added_ttft_p50_ms_vs_openai} / ${result.added_ttft_p99_ms_vs_openai}`,
          "TTFT p50 ratio": result.ttft_p50_ratio_vs_openai,
          "tok/s": result.tps,
          "tok/s ratio": result.throughput_ratio_vs_openai,
          "queen CPU ms/request": result.queen_cpu_ms_per_request,
          "CPU ratio": result.queen_cpu_ratio_vs_openai,
        });
      }
    }
  } finally {
    await worker.child.stop();
    await queen.stop();
  }
  printTable(rows);
  return results;
}
