import type { OpenAiEngineAdapter } from "./run-openai-engine-worker.js";
import { readVllmStats } from "./vllm-stats.js";
import { VLLM_INSTALL_HINT } from "./worker-type.js";

/**
 * vLLM: `vllm serve <model> --served-model-name <id> --host 127.0.0.1 --port <free>
 * --tensor-parallel-size <devices> [--max-model-len <ctx>] --max-num-seqs <parallel>`, its
 * Prometheus /metrics for the heartbeat. 0.6.0 is the oldest vLLM this adapter speaks to (stream
 * usage, `/version`).
 */
export const vllmAdapter: OpenAiEngineAdapter = {
  spec: {
    name: "vllm",
    workerType: "vllm",
    capabilities: ["text-generation", "chat", "json_schema"],
    hint: VLLM_INSTALL_HINT,
    minVersion: "0.6.0",
    readStats: readVllmStats,
  },
  engineId: "vllm",
  urlEnv: "RBEE_VLLM_URL",
  binaryEnv: "RBEE_VLLM",
  args: (o) => [
    "serve",
    o.model,
    "--served-model-name",
    o.servedName,
    "--host",
    "127.0.0.1",
    "--port",
    String(o.port),
    "--tensor-parallel-size",
    String(o.tensorParallel),
    "--max-num-seqs",
    String(o.parallel),
    ...(o.ctxSize !== undefined ? ["--max-model-len", String(o.ctxSize)] : []),
  ],
};
