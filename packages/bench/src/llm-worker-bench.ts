import { statSync } from "node:fs";
import { Agent, request } from "node:http";
import { parseSse } from "@rbee/contract";
import { type StartedWorker, startLlmWorker } from "@rbee/testing";
import { getLlama, type LlamaContextSequence, LlamaLogLevel, type LlamaModel } from "node-llama-cpp";
import { median, printTable, round } from "./stats.js";

export interface LlmBenchOptions {
  label: string;
  modelPath: string;
  threads: number;
  ctxSize: number;
  maxTokens: number;
  rounds: number;
}

export interface LlmBenchResult {
  label: string;
  model_bytes: number;
  threads: number;
  max_tokens: number;
  rounds: number;
  baseline_single_tps: number;
  worker_single_tps: number;
  /** the same request without streaming: what HTTP costs without a write per token */
  worker_single_json_tps: number;
  baseline_concurrent4_tps: number;
  worker_concurrent4_tps: number;
  /** worker single stream ÷ in-process single stream (target ≥ 0.95) */
  single_ratio: number;
  /** worker 4 concurrent aggregate ÷ worker single stream (target ≥ 1.5) */
  concurrency_gain: number;
  /** the same gain for node-llama-cpp alone: what the engine allows */
  baseline_concurrency_gain: number;
  runs: Record<string, number[]>;
}

const PROMPTS = ["Once upon a time", "The little dog", "One day, Tom", "Lily and Ben"];
/** The worker's greedy sampling settings, so that both sides run the same sampler chain. */
const GREEDY = { temperature: 0, topK: 40, topP: 0.95, minP: 0.05 } as const;

function promptTokens(model: LlamaModel, text: string) {
  const tokens = model.tokenize(text, true);
  if (model.tokens.bos !== null && model.tokens.shouldPrependBosToken) tokens.unshift(model.tokens.bos);
  return tokens;
}

/** The baseline: node-llama-cpp driven directly, one sequence per stream, text decoded at the end. */
async function inProcess(model: LlamaModel, seq: LlamaContextSequence, prompt: string, maxTokens: number) {
  await seq.clearHistory();
  const out = [];
  const t0 = performance.now();
  for await (const token of seq.evaluate(promptTokens(model, prompt), GREEDY)) {
    out.push(token);
    if (out.length >= maxTokens) break;
  }
  model.detokenize(out);
  return { tokens: out.length, ms: performance.now() - t0 };
}

const agent = new Agent({ keepAlive: true, maxSockets: 16 });

/**
 * One request to the worker, timed from sending it to its last byte. The client is node:http, as
 * lean as a client gets: on a 2-core machine a heavier one (fetch's web streams) competes with the
 * worker for the cores and measures itself.
 */
function overHttp(
  w: StartedWorker,
  prompt: string,
  maxTokens: number,
  stream = true,
): Promise<{ tokens: number; ms: number }> {
  const t0 = performance.now();
  const body = JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, stream });
  return new Promise((resolve, reject) => {
    const req = request(
      `${w.url}/v1/infer`,
      { method: "POST", agent, headers: { "content-type": "application/json" } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", async () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let tokens = 0;
          if (!stream) tokens = (JSON.parse(text) as { tokens_generated: number }).tokens_generated;
          else {
            async function* once() {
              yield new TextEncoder().encode(text);
            }
            for await (const e of parseSse(once())) {
              if (e.event === "done") tokens = (JSON.parse(e.data) as { tokens_generated: number }).tokens_generated;
              if (e.event === "error") reject(new Error(`worker stream failed: ${e.data}`));
            }
          }
          resolve({ tokens, ms: performance.now() - t0 });
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const tps = (r: { tokens: number; ms: number }) => (r.tokens / r.ms) * 1000;
async function concurrently(run: (i: number) => Promise<{ tokens: number; ms: number }>) {
  const t0 = performance.now();
  const all = await Promise.all(PROMPTS.map((_, i) => run(i)));
  return { tokens: all.reduce((a, r) => a + r.tokens, 0), ms: performance.now() - t0 };
}

/**
 * Tokens per second of the llm worker over HTTP (SSE streaming), single stream and 4 concurrent,
 * against node-llama-cpp driven in this process with the same model, threads, context and sampler.
 * Rounds alternate between the two so that drift on a shared machine hits both alike.
 */
export async function benchLlmWorker(o: LlmBenchOptions): Promise<LlmBenchResult> {
  const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath: o.modelPath, gpuLayers: 0 });
  const context = await model.createContext({
    contextSize: o.ctxSize,
    sequences: 4,
    threads: o.threads,
    batchSize: Math.min(512, o.ctxSize),
  });
  const seqs = PROMPTS.map(() => context.getSequence());
  const worker = await startLlmWorker(
    ["--threads", String(o.threads), "--ctx-size", String(o.ctxSize), "--parallel", "4"],
    {
      model: o.modelPath,
    },
  );
  const runs: Record<string, number[]> = {
    baseline_single: [],
    worker_single: [],
    worker_single_json: [],
    baseline_c4: [],
    worker_c4: [],
  };
  try {
    // warm both up (first decode allocates)
    await inProcess(model, seqs[0] as LlamaContextSequence, PROMPTS[0] as string, 16);
    await overHttp(worker, PROMPTS[0] as string, 16);
    for (let r = 0; r < o.rounds; r++) {
      const prompt = PROMPTS[r % PROMPTS.length] as string;
      const order = r % 2 === 0 ? ["baseline", "worker", "json"] : ["json", "worker", "baseline"];
      for (const side of order) {
        if (side === "baseline")
          runs.baseline_single?.push(tps(await inProcess(model, seqs[0] as LlamaContextSequence, prompt, o.maxTokens)));
        else if (side === "worker") runs.worker_single?.push(tps(await overHttp(worker, prompt, o.maxTokens)));
        else runs.worker_single_json?.push(tps(await overHttp(worker, prompt, o.maxTokens, false)));
      }
      for (const side of order) {
        if (side === "baseline") {
          runs.baseline_c4?.push(
            tps(
              await concurrently((i) =>
                inProcess(model, seqs[i] as LlamaContextSequence, PROMPTS[i] as string, o.maxTokens),
              ),
            ),
          );
        } else {
          runs.worker_c4?.push(tps(await concurrently((i) => overHttp(worker, PROMPTS[i] as string, o.maxTokens))));
        }
      }
    }
  } finally {
    await worker.child.stop();
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
  const m = (k: string) => round(median(runs[k] ?? []), 1);
  const result: LlmBenchResult = {
    label: o.label,
    model_bytes: statSync(o.modelPath).size,
    threads: o.threads,
    max_tokens: o.maxTokens,
    rounds: o.rounds,
    baseline_single_tps: m("baseline_single"),
    worker_single_tps: m("worker_single"),
    worker_single_json_tps: m("worker_single_json"),
    baseline_concurrent4_tps: m("baseline_c4"),
    worker_concurrent4_tps: m("worker_c4"),
    single_ratio: round(m("worker_single") / m("baseline_single"), 3),
    concurrency_gain: round(m("worker_c4") / m("worker_single"), 3),
    baseline_concurrency_gain: round(m("baseline_c4") / m("baseline_single"), 3),
    runs: Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, v.map((x) => round(x, 1))])),
  };
  printTable([
    {
      what: "single stream",
      "in-process tok/s": result.baseline_single_tps,
      "worker tok/s": result.worker_single_tps,
      ratio: result.single_ratio,
    },
    {
      what: "single, not streamed",
      "in-process tok/s": result.baseline_single_tps,
      "worker tok/s": result.worker_single_json_tps,
      ratio: round(result.worker_single_json_tps / result.baseline_single_tps, 3),
    },
    {
      what: "4 concurrent (aggregate)",
      "in-process tok/s": result.baseline_concurrent4_tps,
      "worker tok/s": result.worker_concurrent4_tps,
      ratio: round(result.worker_concurrent4_tps / result.baseline_concurrent4_tps, 3),
    },
  ]);
  return result;
}
