import { statSync } from "node:fs";
import { Agent, request } from "node:http";
import { parseSse } from "@rbee/contract";
import { freePort } from "@rbee/server-kit";
import { ChildHandle, type StartedWorker, startLlamaServerWorker, startLlmWorker, waitFor } from "@rbee/testing";
import { median, printTable, round } from "./stats.js";

export interface LlamaServerBenchOptions {
  label: string;
  /** The llama-server binary. */
  engine: string;
  modelPath: string;
  threads: number;
  ctxSize: number;
  maxTokens: number;
  rounds: number;
}

export interface LlamaServerBenchResult {
  label: string;
  engine: string;
  model_bytes: number;
  threads: number;
  max_tokens: number;
  rounds: number;
  /** llama-server called directly (native /completion, streamed), started with the adapter's own flags */
  direct_single_tps: number;
  direct_concurrent4_tps: number;
  /** the same llama-server without --embeddings: what serving embeddings too costs */
  direct_no_embeddings_single_tps: number;
  adapter_single_tps: number;
  adapter_concurrent4_tps: number;
  llm_worker_single_tps: number;
  llm_worker_concurrent4_tps: number;
  /** adapter ÷ direct, single stream, the median of the rounds' ratios (target ≥ 0.97) */
  adapter_single_ratio: number;
  /** adapter ÷ direct, 4 concurrent (target ≥ 0.97) */
  adapter_concurrent4_ratio: number;
  /** built-in llm worker ÷ llama-server direct */
  llm_worker_single_ratio: number;
  llm_worker_concurrent4_ratio: number;
  runs: Record<string, number[]>;
}

const PROMPTS = ["Once upon a time", "The little dog", "One day, Tom", "Lily and Ben"];
const agent = new Agent({ keepAlive: true, maxSockets: 16 });

/**
 * One streamed request, timed from sending it to its last byte; `tokens` read from the terminal event.
 * `pooled: false` opens a connection of its own, as the adapter does towards llama-server (which
 * closes a connection after a stream although it announces keep-alive: a reused socket fails with
 * "socket hang up").
 */
function streamed(
  url: string,
  body: unknown,
  tokensOf: (event: string, data: string) => number | undefined,
  pooled = true,
) {
  const t0 = performance.now();
  const payload = JSON.stringify(body);
  const headers = { "content-type": "application/json", "content-length": String(Buffer.byteLength(payload)) };
  return new Promise<{ tokens: number; ms: number }>((resolve, reject) => {
    const req = request(url, { method: "POST", agent: pooled ? agent : false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", async () => {
        const ms = performance.now() - t0;
        const text = Buffer.concat(chunks).toString("utf8");
        if ((res.statusCode ?? 500) >= 400) return reject(new Error(`${url}: HTTP ${res.statusCode}: ${text}`));
        let tokens = 0;
        async function* once() {
          yield new TextEncoder().encode(text);
        }
        for await (const e of parseSse(once())) tokens = tokensOf(e.event, e.data) ?? tokens;
        resolve({ tokens, ms });
      });
    });
    req.on("error", reject);
    req.end(payload);
  });
}

/** A worker's /v1/infer, streamed. */
const viaWorker = (w: StartedWorker, prompt: string, maxTokens: number) =>
  streamed(`${w.url}/v1/infer`, { prompt, max_tokens: maxTokens, temperature: 0, stream: true }, (event, data) =>
    event === "done" ? (JSON.parse(data) as { tokens_generated: number }).tokens_generated : undefined,
  );

/** llama-server's native /completion, streamed, with the body the adapter sends. */
const viaLlamaServer = (url: string, prompt: string, maxTokens: number) =>
  streamed(
    `${url}/completion`,
    { prompt, n_predict: maxTokens, temperature: 0, stream: true, cache_prompt: true, repeat_penalty: 1 },
    (_event, data) => {
      const chunk = JSON.parse(data) as { stop?: boolean; tokens_predicted?: number };
      return chunk.stop ? chunk.tokens_predicted : undefined;
    },
    false,
  );

const tps = (r: { tokens: number; ms: number }) => (r.tokens / r.ms) * 1000;
async function concurrently(run: (prompt: string) => Promise<{ tokens: number; ms: number }>) {
  const t0 = performance.now();
  const all = await Promise.all(PROMPTS.map((p) => run(p)));
  return { tokens: all.reduce((a, r) => a + r.tokens, 0), ms: performance.now() - t0 };
}

/** llama-server started by hand with `args` (its --port replaced), ready when /health answers 200. */
async function startDirect(engine: string, args: readonly string[]): Promise<{ child: ChildHandle; url: string }> {
  const port = await freePort();
  const own = [...args];
  own[own.indexOf("--port") + 1] = String(port);
  const child = new ChildHandle(engine, own);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (child.exitInfo) throw new Error(`llama-server exited while starting:\n${child.tail()}`);
      const ok = await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      );
      return ok ? true : undefined;
    },
    60_000,
    "the direct llama-server to be ready",
  );
  return { child, url };
}

/**
 * Tokens per second through the llama-server adapter vs the same llama-server binary called
 * directly with the adapter's own flags (read from the adapter's log), single stream and 4
 * concurrent, all streamed; and the built-in llm worker (node-llama-cpp) on the same model, threads,
 * context and slots. Rounds alternate the order of the sides, so that drift on a shared machine hits
 * all alike.
 */
export async function benchLlamaServer(o: LlamaServerBenchOptions): Promise<LlamaServerBenchResult> {
  const common = ["--threads", String(o.threads), "--ctx-size", String(o.ctxSize), "--parallel", "4"];
  const adapter = await startLlamaServerWorker(o.engine, common, { model: o.modelPath });
  const started = await adapter.child.waitForLine(/^\{.*"msg":"llama-server started".*\}$/m);
  const args = (JSON.parse(started[0]) as { args: string[] }).args;
  const direct = await startDirect(o.engine, args);
  const noEmbeddings = await startDirect(
    o.engine,
    args.filter((a, i) => a !== "--embeddings" && a !== "--pooling" && args[i - 1] !== "--pooling"),
  );
  const llm = await startLlmWorker(common, { model: o.modelPath });
  const runs: Record<string, number[]> = {
    direct_single: [],
    direct_no_embd_single: [],
    adapter_single: [],
    llm_single: [],
    direct_c4: [],
    adapter_c4: [],
    llm_c4: [],
  };
  type Side = "direct" | "no_embd" | "adapter" | "llm";
  const single = (side: Side, prompt: string) =>
    side === "direct"
      ? viaLlamaServer(direct.url, prompt, o.maxTokens)
      : side === "no_embd"
        ? viaLlamaServer(noEmbeddings.url, prompt, o.maxTokens)
        : viaWorker(side === "adapter" ? adapter : llm, prompt, o.maxTokens);
  try {
    for (const side of ["direct", "no_embd", "adapter", "llm"] as Side[]) await single(side, PROMPTS[0] as string); // warm up
    for (let r = 0; r < o.rounds; r++) {
      const prompt = PROMPTS[r % PROMPTS.length] as string;
      const sides: Side[] = ["direct", "adapter", "llm", "no_embd"];
      const order = r % 2 === 0 ? sides : [...sides].reverse();
      for (const side of order) {
        const key = side === "no_embd" ? "direct_no_embd_single" : `${side}_single`;
        runs[key]?.push(tps(await single(side, prompt)));
      }
      for (const side of order) {
        if (side === "no_embd") continue;
        runs[`${side}_c4`]?.push(tps(await concurrently((p) => single(side, p))));
      }
    }
  } finally {
    await Promise.all([adapter.child.stop(), llm.child.stop(), direct.child.stop(), noEmbeddings.child.stop()]);
  }
  const m = (k: string) => round(median(runs[k] ?? []), 1);
  // the median of the rounds' own ratios: each round's sides ran back to back, under the same load
  const paired = (a: string, b: string) =>
    round(
      median(
        (runs[a] ?? [])
          .map((x, i) => x / ((runs[b] ?? [])[i] ?? Number.NaN))
          .filter((r) => Number.isFinite(r) && r > 0),
      ),
      3,
    );
  const result: LlamaServerBenchResult = {
    label: o.label,
    engine: o.engine,
    model_bytes: statSync(o.modelPath).size,
    threads: o.threads,
    max_tokens: o.maxTokens,
    rounds: o.rounds,
    direct_single_tps: m("direct_single"),
    direct_concurrent4_tps: m("direct_c4"),
    direct_no_embeddings_single_tps: m("direct_no_embd_single"),
    adapter_single_tps: m("adapter_single"),
    adapter_concurrent4_tps: m("adapter_c4"),
    llm_worker_single_tps: m("llm_single"),
    llm_worker_concurrent4_tps: m("llm_c4"),
    adapter_single_ratio: paired("adapter_single", "direct_single"),
    adapter_concurrent4_ratio: paired("adapter_c4", "direct_c4"),
    llm_worker_single_ratio: paired("llm_single", "direct_single"),
    llm_worker_concurrent4_ratio: paired("llm_c4", "direct_c4"),
    runs: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.map((x) => round(x, 1))])),
  };
  printTable([
    {
      what: "single stream",
      "llama-server direct tok/s": result.direct_single_tps,
      "adapter tok/s": result.adapter_single_tps,
      "adapter/direct": result.adapter_single_ratio,
      "llm worker tok/s": result.llm_worker_single_tps,
      "llm worker/direct": result.llm_worker_single_ratio,
    },
    {
      what: "4 concurrent (aggregate)",
      "llama-server direct tok/s": result.direct_concurrent4_tps,
      "adapter tok/s": result.adapter_concurrent4_tps,
      "adapter/direct": result.adapter_concurrent4_ratio,
      "llm worker tok/s": result.llm_worker_concurrent4_tps,
      "llm worker/direct": result.llm_worker_concurrent4_ratio,
    },
  ]);
  console.log(
    `(llama-server without --embeddings, single stream: ${result.direct_no_embeddings_single_tps} tok/s, ${paired("direct_no_embd_single", "direct_single")}× the one with it)`,
  );
  return result;
}
