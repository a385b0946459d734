import type { Command } from "commander";
import { collect, intArg, keepAliveArg, numberArg } from "../parse.js";

/** The sampling flags `rbee infer` and `rbee chat` share. */
export interface SamplingFlags {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repeatPenalty?: number;
  seed?: number;
  stop?: string[];
  keepAlive?: number | string;
}

export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option(
      "-n, --max-tokens <n>",
      "tokens to generate at most (default: until the model stops or the context is full)",
      intArg(1),
    )
    .option("--temperature <x>", "0 is greedy and deterministic (default 0.8)", numberArg(0, 10))
    .option("--top-p <x>", "nucleus sampling (default 0.95)", numberArg(0, 1))
    .option("--top-k <n>", "sample from the k most likely tokens; 0 is off (default 40)", intArg(0))
    .option("--min-p <x>", "drop tokens below min-p × the top probability (default 0.05)", numberArg(0, 1))
    .option("--repeat-penalty <x>", "penalize repeated tokens; 1 is off", numberArg(0, 10))
    .option("--seed <n>", "makes sampling repeatable", intArg(0, 0xffff_ffff))
    .option("--stop <text>", "text that ends generation (repeatable)", collect)
    .option(
      "--keep-alive <duration>",
      "keep the worker this long after the request: 30s, 5m, 1h, forever, 0",
      keepAliveArg,
    );
}

/** The job fields for the sampling flags given (the rest is left to the worker's defaults). */
export function samplingFields(f: SamplingFlags) {
  return {
    max_tokens: f.maxTokens,
    temperature: f.temperature,
    top_p: f.topP,
    top_k: f.topK,
    min_p: f.minP,
    repeat_penalty: f.repeatPenalty,
    seed: f.seed,
    stop: f.stop,
    keep_alive: f.keepAlive,
  };
}
