import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "@rbee/server-kit";
import { postJson, requireStoriesModel, runRbee, startRbee, tempRbeeDirs } from "@rbee/testing";
import { median, printTable, round } from "./stats.js";

export interface ColdStartResult {
  runs: number;
  first_token_ms: number[];
  first_token_p50_ms: number;
  total_p50_ms: number;
  /** The same `rbee infer` with the cluster already up and the worker loaded. */
  warm_first_token_p50_ms: number;
  /**
   * A model not loaded yet (a copy of the file under another name), with the queen and the hive up
   * for a few seconds: `POST /v1/completions` to the queen until its answer (HTTP, no CLI), and the
   * same through `rbee infer` (first token).
   */
  new_model_http_ms: number[];
  new_model_http_p50_ms: number;
  new_model_cli_p50_ms: number;
}

/** How long the cluster is left alone before the new-model request: the hive's spare worker gets ready. */
const SETTLE_MS = 6000;

/**
 * `rbee infer` from nothing running: a fresh cache and config, no queen, no hive; the CLI starts
 * them, the queen places a worker, the worker loads stories260K, the first token reaches stdout.
 * Timed from spawning the CLI to the first byte on its stdout; warm runs are the baseline.
 */
export async function benchColdStart(runs: number): Promise<ColdStartResult> {
  const model = requireStoriesModel();
  const cold: number[] = [];
  const totals: number[] = [];
  const warm: number[] = [];
  const newHttp: number[] = [];
  const newCli: number[] = [];
  for (let i = 0; i < runs; i++) {
    const dirs = tempRbeeDirs("bench-cold");
    const queenPort = await freePort();
    const env = {
      ...dirs.env,
      RBEE_QUEEN_PORT: String(queenPort),
      RBEE_QUEEN_URL: `http://127.0.0.1:${queenPort}`,
      RBEE_HIVE_PORT: String(await freePort()),
      RBEE_WORKER_PORT_START: String(20_000 + Math.floor(Math.random() * 30_000)),
      RBEE_MODELS_DIRS: dirs.root,
    };
    try {
      for (const phase of ["cold", "warm", "warm"] as const) {
        const t0 = performance.now();
        const cli = startRbee(
          ["infer", "-m", model, "-p", "Once upon a time", "--max-tokens", "8", "--temperature", "0"],
          { env },
        );
        let first = -1;
        cli.proc.stdout?.once("data", () => {
          first = performance.now() - t0;
        });
        const exit = await cli.waitForExit(120_000);
        if (exit.code !== 0) throw new Error(`rbee infer failed (${exit.code}):\n${cli.tail()}`);
        if (phase === "cold") {
          cold.push(first);
          totals.push(performance.now() - t0);
        } else warm.push(first);
      }
      for (const via of ["http", "cli"] as const) {
        const copy = join(dirs.root, `stories-${via}.gguf`);
        copyFileSync(model, copy);
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        const t0 = performance.now();
        if (via === "http") {
          const reply = await postJson(`${env.RBEE_QUEEN_URL}/v1/completions`, {
            model: copy,
            prompt: "Once upon a time",
            max_tokens: 8,
            temperature: 0,
          });
          if (reply.status !== 200)
            throw new Error(`a completion on a new model failed (${reply.status}): ${reply.text}`);
          newHttp.push(performance.now() - t0);
        } else {
          const cli = startRbee(["infer", "-m", copy, "-p", "Once upon a time", "--max-tokens", "8"], { env });
          let first = -1;
          cli.proc.stdout?.once("data", () => {
            first = performance.now() - t0;
          });
          const exit = await cli.waitForExit(120_000);
          if (exit.code !== 0) throw new Error(`rbee infer failed (${exit.code}):\n${cli.tail()}`);
          newCli.push(first);
        }
      }
    } finally {
      await runRbee(["down"], { env, timeoutMs: 60_000 });
    }
  }
  const result: ColdStartResult = {
    runs,
    first_token_ms: cold.map((x) => round(x, 0)),
    first_token_p50_ms: round(median(cold), 0),
    total_p50_ms: round(median(totals), 0),
    warm_first_token_p50_ms: round(median(warm), 0),
    new_model_http_ms: newHttp.map((x) => round(x, 0)),
    new_model_http_p50_ms: round(median(newHttp), 0),
    new_model_cli_p50_ms: round(median(newCli), 0),
  };
  printTable([
    {
      case: "from nothing (queen, hive, worker started)",
      "first token p50 ms": result.first_token_p50_ms,
      "whole command p50 ms": result.total_p50_ms,
    },
    {
      case: "warm (all running, model loaded)",
      "first token p50 ms": result.warm_first_token_p50_ms,
      "whole command p50 ms": "",
    },
    {
      case: "a model not loaded yet, queen and hive up: POST /v1/completions answered",
      "first token p50 ms": "",
      "whole command p50 ms": result.new_model_http_p50_ms,
    },
    {
      case: "a model not loaded yet, queen and hive up: rbee infer",
      "first token p50 ms": result.new_model_cli_p50_ms,
      "whole command p50 ms": "",
    },
  ]);
  return result;
}
