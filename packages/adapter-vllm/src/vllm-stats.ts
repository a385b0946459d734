import { type EngineClient, type EngineStatsSample, parsePrometheusText } from "@rbee/worker-kit";

/** Every sample of a metric, whatever its labels (`vllm:num_requests_running{engine="0",model_name="x"}`). */
function samplesOf(samples: Map<string, number>, name: string): number[] {
  return [...samples].filter(([key]) => key === name || key.startsWith(`${name}{`)).map(([, value]) => value);
}

function total(samples: Map<string, number>, name: string): number | undefined {
  const values = samplesOf(samples, name);
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0);
}

function mean(samples: Map<string, number>, name: string): number | undefined {
  const values = samplesOf(samples, name);
  return values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length;
}

/**
 * vLLM's Prometheus /metrics as a stats sample: `vllm:num_requests_running` and
 * `vllm:num_requests_waiting` (requests in the batch, and waiting), the KV-cache usage
 * (`vllm:kv_cache_usage_perc` from vLLM 0.10 on, `vllm:gpu_cache_usage_perc` before, 0..1) and
 * `vllm:generation_tokens_total` (its rate is tokens/s). Counts are summed over vLLM's engines (data parallel), the KV usage averaged.
 */
export async function readVllmStats(client: EngineClient): Promise<EngineStatsSample> {
  const m = parsePrometheusText(await client.text("/metrics", { timeoutMs: 2000 }));
  const kv = mean(m, "vllm:kv_cache_usage_perc") ?? mean(m, "vllm:gpu_cache_usage_perc");
  const sample: EngineStatsSample = {
    running: total(m, "vllm:num_requests_running"),
    waiting: total(m, "vllm:num_requests_waiting"),
    kvCacheUsage: kv,
    generatedTokens: total(m, "vllm:generation_tokens_total"),
  };
  if (sample.running === undefined && sample.generatedTokens === undefined)
    throw new Error("its /metrics has no vllm:num_requests_running nor vllm:generation_tokens_total: is it vLLM?");
  return sample;
}
