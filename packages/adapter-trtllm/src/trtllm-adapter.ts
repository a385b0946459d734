import { existsSync, statSync } from "node:fs";
import { basename } from "node:path";
import type { OpenAiEngineAdapter } from "@rbee/adapter-vllm";
import { trtllmStatsReader } from "./trtllm-stats.js";
import { TRTLLM_INSTALL_HINT } from "./worker-type.js";

/**
 * TensorRT-LLM: `trtllm-serve <model> --host 127.0.0.1 --port <free> --backend pytorch --tp_size
 * <devices> --max_batch_size <parallel> [--max_seq_len <ctx>]`; its /metrics (iteration stats, JSON)
 * for the heartbeat. trtllm-serve has no served-model-name: it serves a directory under its name.
 * 0.17.0 is the oldest version this adapter speaks to (the first with trtllm-serve's /metrics).
 */
export function trtllmAdapter(): OpenAiEngineAdapter {
  return {
    spec: {
      name: "trtllm",
      workerType: "trtllm",
      capabilities: ["text-generation", "chat"],
      hint: TRTLLM_INSTALL_HINT,
      minVersion: "0.17.0",
      readStats: trtllmStatsReader(),
    },
    engineId: "trtllm-serve",
    urlEnv: "RBEE_TRTLLM_URL",
    binaryEnv: "RBEE_TRTLLM_SERVE",
    servedName: (model) => (existsSync(model) && statSync(model).isDirectory() ? basename(model) : model),
    args: (o) => [
      o.model,
      "--host",
      "127.0.0.1",
      "--port",
      String(o.port),
      "--backend",
      "pytorch",
      "--tp_size",
      String(o.tensorParallel),
      "--max_batch_size",
      String(o.parallel),
      ...(o.ctxSize !== undefined ? ["--max_seq_len", String(o.ctxSize)] : []),
    ],
  };
}
