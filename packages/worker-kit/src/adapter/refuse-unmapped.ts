import { type InferRequest, ValidationError } from "@rbee/contract";

/**
 * The worker contract's optional fields an adapter does not map onto its engine yet (logprobs,
 * fill-in-the-middle, tools, chats with tool calls): a 400 that names the field and says which worker
 * serves it, rather than an answer that silently lacks it. `name` is the engine's ("llama-server").
 */
export function refuseUnmapped(request: InferRequest, name: string): void {
  const refuse = (param: string, what: string) => {
    throw new ValidationError(
      `${what} through the ${name} adapter is not served yet; use the llm worker (--type llm), which serves it`,
      param,
    );
  };
  if (request.logprobs !== undefined) refuse("logprobs", "logprobs");
  if (request.suffix !== undefined) refuse("suffix", "fill-in-the-middle (suffix)");
  if (request.tools !== undefined && request.tools.length > 0) refuse("tools", "tool calling");
  const i = request.messages?.findIndex((m) => m.role === "tool" || (m.tool_calls?.length ?? 0) > 0) ?? -1;
  if (i >= 0) refuse(`messages[${i}]`, "a chat with tool calls and results");
}
