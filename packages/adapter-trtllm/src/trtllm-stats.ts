import { safeParse } from "@rbee/contract";
import type { EngineClient, EngineStatsSample } from "@rbee/worker-kit";
import { z } from "zod";

/**
 * One iteration of TensorRT-LLM's executor as trtllm-serve's /metrics lists them (its IterationStats
 * as JSON; tensorrt_llm/serve/openai_server.py, get_iteration_stats), leniently: the PyTorch
 * backend leaves some fields out.
 */
const IterationStats = z.looseObject({
  iter: z.number().optional(),
  numActiveRequests: z.number().nonnegative().optional(),
  numQueuedRequests: z.number().nonnegative().optional(),
  gpuMemUsage: z.number().nonnegative().optional(),
  kvCacheStats: z
    .looseObject({
      maxNumBlocks: z.number().nonnegative().optional(),
      usedNumBlocks: z.number().nonnegative().optional(),
      freeNumBlocks: z.number().nonnegative().optional(),
    })
    .optional(),
  inflightBatchingStats: z
    .looseObject({
      numGenRequests: z.number().nonnegative().optional(),
      numPausedRequests: z.number().nonnegative().optional(),
      avgNumDecodedTokensPerIter: z.number().nonnegative().optional(),
    })
    .optional(),
});
const IterationStatsList = z.array(IterationStats);

/**
 * A reader of trtllm-serve's /metrics. Each read answers the iterations since the last one (the
 * executor's stats queue is drained): the last iteration gives the requests running
 * (`numActiveRequests`), waiting (`numQueuedRequests` + paused), the KV-cache usage
 * (`usedNumBlocks / maxNumBlocks`) and the GPU memory (`gpuMemUsage`); the tokens decoded in every
 * iteration (`numGenRequests × avgNumDecodedTokensPerIter`) add up to a counter whose rate is
 * tokens/s. No iteration since the last read: the engine is idle.
 */
export function trtllmStatsReader(): (client: EngineClient) => Promise<EngineStatsSample> {
  let decoded = 0;
  return async (client) => {
    const parsed = safeParse(
      IterationStatsList,
      await client.json("/metrics", { timeoutMs: 5000 }),
      "trtllm-serve /metrics",
    );
    if (!parsed.ok) throw new Error(`its /metrics is not a list of iteration stats: ${parsed.error.message}`);
    for (const s of parsed.value) {
      const b = s.inflightBatchingStats;
      decoded += (b?.numGenRequests ?? 0) * (b?.avgNumDecodedTokensPerIter || 1);
    }
    const last = parsed.value.at(-1);
    if (last === undefined) return { running: 0, waiting: 0, generatedTokens: decoded };
    const kv = last.kvCacheStats;
    const max = kv?.maxNumBlocks ?? 0;
    const used = kv?.usedNumBlocks ?? (kv?.freeNumBlocks !== undefined ? max - kv.freeNumBlocks : undefined);
    return {
      running: last.numActiveRequests,
      waiting: (last.numQueuedRequests ?? 0) + (last.inflightBatchingStats?.numPausedRequests ?? 0),
      kvCacheUsage: max > 0 && used !== undefined ? used / max : undefined,
      memoryUsed: last.gpuMemUsage,
      generatedTokens: decoded,
    };
  };
}
