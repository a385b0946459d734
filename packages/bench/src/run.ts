import { statSync } from "node:fs";
import { parseArgs } from "node:util";
import { cachedGeneratedModel, findLlamaServer, requireStoriesModel } from "@rbee/testing";
import { chooseThreadCount } from "@rbee/worker-kit";
import { benchColdStart } from "./cold-start-bench.js";
import { benchCompat } from "./compat-bench.js";
import { benchClusterUpdates, benchFirstLoad, CHROMIUM, chromiumAvailable } from "./dashboard-bench.js";
import { benchDownload } from "./download-bench.js";
import { benchFailover } from "./failover-bench.js";
import { benchGroups } from "./groups-bench.js";
import { benchHeartbeat } from "./heartbeat-bench.js";
import { benchLanShare } from "./lan-share-bench.js";
import { benchLlamaServer } from "./llama-server-bench.js";
import { benchLlmWorker } from "./llm-worker-bench.js";
import { benchQueen } from "./queen-bench.js";
import { saveResults, verdict, verdictAtMost } from "./results.js";
import { benchRouting, type RoutingResult } from "./routing-bench.js";
import { benchSoak, soakVerdictLine } from "./soak-bench.js";

/**
 * `npm run bench [-- suite...] [--minutes N]`: runs the benchmark suites (all by default, but for
 * the 30-minute soak, which runs only when named). Every figure is printed beside a baseline
 * measured in the same run, and written to bench/results/. `--minutes N` (or RBEE_SOAK_MINUTES)
 * sets how long the soak runs.
 */
const { values: flags, positionals: wanted } = parseArgs({
  options: { minutes: { type: "string" } },
  allowPositionals: true,
});
const soakMinutes = Number(flags.minutes ?? process.env.RBEE_SOAK_MINUTES ?? 30);
if (!(soakMinutes > 0)) {
  console.error(
    `--minutes must be a number of minutes above 0, not '${flags.minutes ?? process.env.RBEE_SOAK_MINUTES}'`,
  );
  process.exit(2);
}
/** Suites that run only when named. */
const ON_REQUEST = new Set(["soak"]);

const SUITES: Record<string, () => Promise<void>> = {
  async llm() {
    const stories = requireStoriesModel();
    console.log("\n== llm worker: tokens/s over HTTP vs node-llama-cpp in-process (stories260K)");
    const small = await benchLlmWorker({
      label: "stories260K",
      modelPath: stories,
      threads: chooseThreadCount({ modelBytes: statSync(stories).size }).threads,
      ctxSize: 1024,
      maxTokens: 256,
      rounds: 7,
    });
    console.log(verdict("worker single / in-process single", small.single_ratio, 0.95));
    console.log(verdict("worker 4 concurrent / worker single", small.concurrency_gain, 1.5));
    console.log(
      `(node-llama-cpp alone gains ${small.baseline_concurrency_gain}× from 4 concurrent sequences on this model)`,
    );
    console.log("\n== the same on a generated 60 MB model (random weights, F16): the engine dominates the loop");
    const generated = await cachedGeneratedModel(60 * 1024 * 1024);
    const large = await benchLlmWorker({
      label: "generated-60MB-f16",
      modelPath: generated.path,
      threads: chooseThreadCount({ modelBytes: statSync(generated.path).size }).threads,
      ctxSize: 512,
      maxTokens: 48,
      rounds: 5,
    });
    console.log(verdict("worker single / in-process single", large.single_ratio, 0.95));
    console.log(verdict("worker 4 concurrent / worker single", large.concurrency_gain, 1.5));
    console.log(
      `(node-llama-cpp alone gains ${large.baseline_concurrency_gain}× from 4 concurrent sequences on this model)`,
    );
    const file = saveResults("llm-worker", { results: [small, large] });
    console.log(`results: ${file}`);
  },
};

SUITES.queen = async () => {
  console.log(
    "\n== queen overhead: streamed completions through the queen vs the same worker called directly (stories260K)",
  );
  const results = await benchQueen({
    rounds: 15,
    maxTokens: 64,
    concurrency: [1, 8],
    cpuProfileDir: process.env.RBEE_BENCH_CPU_PROF,
  });
  for (const r of results) {
    console.log(
      verdictAtMost(`added time to first token at p50, ${r.concurrency} stream(s)`, r.added_ttft_p50_ms ?? 0, 1, " ms"),
    );
    // issue 16: 0.97 of direct for one stream, 0.95 for eight (they share the two cores with the queen)
    const target = (r.concurrency ?? 1) > 1 ? 0.95 : 0.97;
    console.log(
      verdict(`throughput through the queen / direct, ${r.concurrency} stream(s)`, r.throughput_ratio ?? 0, target),
    );
    console.log(
      `${r.concurrency} stream(s) through a bare Node proxy (the floor for a proxy in Node here): +${r.proxy_added_ttft_p50_ms} ms to the first token at p50, ${r.proxy_throughput_ratio} of direct throughput`,
    );
  }
  const file = saveResults("queen", { results });
  console.log(`results: ${file}`);
};

SUITES.groups = async () => {
  if (!findLlamaServer()) {
    console.log("\n== worker groups: skipped, no llama.cpp build (build one with `npx rbee engine build llama.cpp`)");
    return;
  }
  console.log(
    "\n== worker groups: tokens/s of stories260K split over 1, 2 and 3 ggml-rpc-server shards on loopback vs one device (a llama-server worker), through the queen; recovery from SIGKILL of a shard vs spawning the group fresh",
  );
  const result = await benchGroups({ rounds: 3, maxTokens: 128, recoveries: 3 });
  const file = saveResults("groups", { results: [result] });
  console.log(`results: ${file}`);
};

SUITES["llama-server"] = async () => {
  const engine = findLlamaServer();
  if (!engine) {
    console.log(
      "\n== llama-server: skipped, no llama-server (build one with `npx rbee engine build llama.cpp`, or set RBEE_LLAMA_SERVER)",
    );
    return;
  }
  const stories = requireStoriesModel();
  const threads = chooseThreadCount({ modelBytes: statSync(stories).size }).threads;
  console.log(
    `\n== llama-server: tokens/s through the adapter vs llama-server called directly (same binary, same flags), and the llm worker vs llama-server (stories260K, ${threads} thread(s))`,
  );
  const small = await benchLlamaServer({
    label: "stories260K",
    engine,
    modelPath: stories,
    threads,
    ctxSize: 1024,
    maxTokens: 256,
    rounds: 7,
  });
  console.log(verdict("adapter single / llama-server direct single", small.adapter_single_ratio, 0.97));
  console.log(
    verdict("adapter 4 concurrent / llama-server direct 4 concurrent", small.adapter_concurrent4_ratio, 0.97),
  );
  console.log(
    `llm worker / llama-server: ${small.llm_worker_single_ratio} single, ${small.llm_worker_concurrent4_ratio} 4 concurrent`,
  );
  console.log(
    "\n== the same on a generated 60 MB model (random weights, F16): the engine dominates the loop. Its 4-concurrent figures swing from run to run: on random weights greedy decoding is a near tie, batching changes where each stream meets its end-of-text token, and a stream that ends early leaves the batch smaller",
  );
  const generated = await cachedGeneratedModel(60 * 1024 * 1024);
  const large = await benchLlamaServer({
    label: "generated-60MB-f16",
    engine,
    modelPath: generated.path,
    threads: chooseThreadCount({ modelBytes: statSync(generated.path).size }).threads,
    ctxSize: 512,
    maxTokens: 48,
    rounds: 5,
  });
  console.log(verdict("adapter single / llama-server direct single", large.adapter_single_ratio, 0.97));
  console.log(
    `adapter 4 concurrent / llama-server direct 4 concurrent = ${large.adapter_concurrent4_ratio} (not held to the target on random weights, see above)`,
  );
  console.log(
    `llm worker / llama-server: ${large.llm_worker_single_ratio} single, ${large.llm_worker_concurrent4_ratio} 4 concurrent`,
  );
  const file = saveResults("llama-server", { results: [small, large] });
  console.log(`results: ${file}`);
};

SUITES.compat = async () => {
  console.log(
    "\n== Ollama and Anthropic routes vs the OpenAI route: streamed chats through one queen to one worker (stories260K), the APIs in every order",
  );
  const results = await benchCompat({ rounds: 24, maxTokens: 64, concurrency: [1, 4] });
  for (const r of results) {
    if (r.api === "openai") continue;
    console.log(
      verdictAtMost(
        `${r.api} / OpenAI time to first token at p50, ${r.concurrency} stream(s) (target: no more than OpenAI's, within 5 %)`,
        r.ttft_p50_ratio_vs_openai,
        1.05,
      ),
    );
    console.log(
      verdict(`${r.api} / OpenAI throughput, ${r.concurrency} stream(s)`, r.throughput_ratio_vs_openai, 0.97),
    );
    console.log(
      verdictAtMost(
        `${r.api} / OpenAI queen CPU per request, ${r.concurrency} stream(s)`,
        r.queen_cpu_ratio_vs_openai,
        1.05,
      ),
    );
  }
  const file = saveResults("compat", { results });
  console.log(`results: ${file}`);
};

SUITES["cold-start"] = async () => {
  console.log("\n== cold start: `rbee infer` with nothing running, to the first token on stdout");
  const result = await benchColdStart(3);
  console.log(verdictAtMost("from nothing to the first token, p50", result.first_token_p50_ms, 2000, " ms"));
  console.log(verdictAtMost("warm rbee infer to the first token, p50", result.warm_first_token_p50_ms, 200, " ms"));
  console.log(verdictAtMost("a model not loaded yet, answered, p50", result.new_model_http_p50_ms, 1000, " ms"));
  const file = saveResults("cold-start", { result });
  console.log(`results: ${file}`);
};

SUITES.download = async () => {
  console.log("\n== downloads: a generated 1 GiB GGUF from the local test hub, downloadFile vs curl (alternating)");
  const result = await benchDownload({ rounds: 5 });
  console.log(verdict("downloadFile parts=1 / curl", result.ratio_parts_1_vs_curl, 0.9));
  console.log(
    verdict(`downloadFile default (${result.default_parts.parts} parts) / curl`, result.ratio_default_vs_curl, 0.9),
  );
  for (const r of result.resume) {
    console.log(
      `${r.refetched_bytes <= r.part_bytes ? "meets" : "MISSES"} target: ${r.case}: fetched again ${r.refetched_bytes} bytes (target ≤ one part, ${r.part_bytes})`,
    );
  }
  const file = saveResults("download", { result });
  console.log(`results: ${file}`);
};

SUITES["lan-share"] = async () => {
  console.log(
    "\n== LAN sharing: hive B fetches a generated 512 MiB GGUF from hive A (two hive processes on loopback) vs a plain HTTP copy",
  );
  const result = await benchLanShare({ rounds: 5 });
  console.log(verdict("hive-to-hive fetch / plain HTTP copy", result.ratio_hive_vs_plain, 0.9));
  const file = saveResults("lan-share", { result });
  console.log(`results: ${file}`);
};

SUITES.heartbeat = async () => {
  const intervalMs = 5000;
  console.log(
    `\n== heartbeat ingestion: the queen's CPU for simulated workers (8 per hive) heartbeating every ${intervalMs / 1000} s, vs an idle queen`,
  );
  const results = await benchHeartbeat({
    workers: [0, 1000, 5000],
    workersPerHive: 8,
    intervalMs,
    windowMs: 20_000,
    cpuProfileDir: process.env.RBEE_BENCH_CPU_PROF,
  });
  const at1000 = results.find((r) => r.workers === 1000);
  if (at1000) {
    console.log(
      verdictAtMost("queen CPU added by 1,000 workers, % of one core", at1000.added_core_fraction * 100, 5, " %"),
    );
  }
  const file = saveResults("heartbeat", { results });
  console.log(`results: ${file}`);
};

SUITES.routing = async () => {
  const workers = 8;
  const concurrency = 16;
  const results: RoutingResult[] = [];
  console.log(
    `\n== routing: one-token completions through the queen to ${workers} workers vs the same workers called directly, ${concurrency} clients (keep-alive)`,
  );
  console.log("echo workers (examples/echo-worker.mjs): the queen's own cost");
  results.push(
    await benchRouting({
      kind: "echo",
      workers,
      concurrency,
      rounds: 4,
      roundMs: 5000,
      cpuProfileDir: process.env.RBEE_BENCH_CPU_PROF,
    }),
  );
  console.log("llm workers on stories260K (1 thread, max_tokens 1): a real worker's pace");
  results.push(
    await benchRouting({
      kind: "llm",
      workers,
      concurrency,
      rounds: 4,
      roundMs: 5000,
      cpuProfileDir: process.env.RBEE_BENCH_CPU_PROF,
    }),
  );
  for (const r of results) {
    console.log(`${r.kind}: requests/s through the queen / direct = ${r.ratio.toFixed(3)}`);
    console.log(
      `${r.kind}: requests/s through a bare Node proxy / direct = ${(r.proxy_rps / r.direct_rps).toFixed(3)} (the floor for a proxy in Node here); queen CPU per request / the bare proxy's = ${(r.queen_cpu_us_per_request / Math.max(1, r.proxy_cpu_us_per_request)).toFixed(2)}`,
    );
  }
  const file = saveResults("routing", { results });
  console.log(`results: ${file}`);
};

SUITES.failover = async () => {
  const heartbeatIntervalMs = 1000;
  console.log(
    `\n== failover: SIGKILL of a hive and its workers to the first successful request sent after it (heartbeat interval ${heartbeatIntervalMs} ms: stale after ${(3 * heartbeatIntervalMs) / 1000} s)`,
  );
  const cases = await benchFailover({ runs: 5, heartbeatIntervalMs, clients: 2, timeoutMs: 60_000 });
  const file = saveResults("failover", { heartbeat_interval_ms: heartbeatIntervalMs, cases });
  console.log(`results: ${file}`);
};

SUITES.dashboard = async () => {
  if (!chromiumAvailable()) {
    console.log(`\n== dashboard: skipped, ${CHROMIUM} is missing (apt-get install chromium)`);
    return;
  }
  console.log("\n== dashboard: the first load in headless chromium, as the queen sends it vs uncompressed");
  const first = await benchFirstLoad();
  console.log(
    `first load: ${(first.transferred_bytes / 1024).toFixed(1)} KB on the wire in ${first.files} files (uncompressed ${(first.uncompressed_bytes / 1024).toFixed(1)} KB); live after ${first.to_live_ms} ms`,
  );
  console.log(verdictAtMost("first load on the wire (KB)", first.transferred_bytes / 1024, 200, " KB"));
  const intervalMs = 2000;
  console.log(
    `\n== dashboard: from a heartbeat that adds a worker to the frame showing its row, with 1,000 simulated workers (heartbeat every ${intervalMs / 1000} s, 10% flip Ready ⇄ Busy each beat) vs 8`,
  );
  const updates = await benchClusterUpdates({ workers: [8, 1000], workersPerHive: 8, intervalMs, rounds: 20 });
  const small = updates.find((r) => r.workers === 8);
  const large = updates.find((r) => r.workers === 1000);
  if (small && large)
    console.log(
      `1,000 workers / 8 workers, update p50: ${(large.update_p50_ms / Math.max(1, small.update_p50_ms)).toFixed(2)}×`,
    );
  const file = saveResults("dashboard", { first_load: first, updates });
  console.log(`results: ${file}`);
};

SUITES.soak = async () => {
  const streams = 8;
  const durationMs = soakMinutes * 60_000;
  // figures settle in the first minutes (allocator arenas, connection pools, the JIT): a fifth of
  // the run, at most 5 minutes, is warm-up
  const warmupMs = Math.min(5 * 60_000, durationMs / 5);
  console.log(
    `\n== soak: ${streams} streams for ${soakMinutes} min through the queen to 2 llm workers (stories260K); RSS and open file descriptors of every process, growth after a ${Math.round(warmupMs / 1000)} s warm-up`,
  );
  const result = await benchSoak({
    durationMs,
    streams,
    warmupMs,
    sampleEveryMs: Math.max(5000, Math.min(30_000, durationMs / 60)),
    maxTokens: 48,
  });
  console.log(
    `requests: ${result.requests}, failed: ${result.failed}${result.errors.length ? ` (${result.errors.join("; ")})` : ""}`,
  );
  for (const v of result.verdicts) console.log(soakVerdictLine(v));
  const file = saveResults("soak", { result });
  console.log(`results: ${file}`);
};

for (const name of wanted) {
  if (!(name in SUITES)) {
    console.error(`unknown suite '${name}'; suites: ${Object.keys(SUITES).join(", ")}`);
    process.exit(2);
  }
}
const all = Object.keys(SUITES).filter((name) => !ON_REQUEST.has(name));
for (const name of wanted.length > 0 ? wanted : all) await SUITES[name]?.();
