import type { InferRequest } from "@rbee/contract";

/**
 * The sampling fields of an InferRequest that were given, under the names llama-server, Ollama
 * (`options`), vLLM and TensorRT-LLM all use: temperature, top_k, top_p, min_p, presence_penalty,
 * frequency_penalty, seed, and stop (always a list).
 */
export function samplingFields(request: InferRequest): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (request.temperature !== undefined) out.temperature = request.temperature;
  if (request.top_k !== undefined) out.top_k = request.top_k;
  if (request.top_p !== undefined) out.top_p = request.top_p;
  if (request.min_p !== undefined) out.min_p = request.min_p;
  if (request.presence_penalty !== undefined) out.presence_penalty = request.presence_penalty;
  if (request.frequency_penalty !== undefined) out.frequency_penalty = request.frequency_penalty;
  if (request.seed !== undefined) out.seed = request.seed;
  if (request.stop !== undefined) out.stop = typeof request.stop === "string" ? [request.stop] : request.stop;
  return out;
}
