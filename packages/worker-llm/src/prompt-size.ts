import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { PromptTooLongError, RbeeError } from "@rbee/contract";
import type { LlamaModel } from "node-llama-cpp";

/** Text tokenized in one go before the event loop gets a turn (about 50 ms of tokenizing on a slow core). */
const CHUNK_CHARS = 32 * 1024;

/**
 * The most bytes of text one token of the model stands for: the longest entry of its vocabulary
 * (tokenizer.ggml.tokens), in UTF-8. Vocabulary entries spell their text at least as long as the
 * text they match (SentencePiece's "▁" is 3 bytes for a space, byte tokens "<0x0A>" 6 for one byte,
 * GPT-2's "Ġ" 2 for one), so no token of a prompt covers more bytes than this. Undefined when the
 * model file does not list its vocabulary.
 */
export function maxTokenBytes(model: LlamaModel): number | undefined {
  const tokens = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens;
  if (!Array.isArray(tokens) || tokens.length === 0) return undefined;
  let max = 1;
  for (const t of tokens) if (typeof t === "string") max = Math.max(max, Buffer.byteLength(t));
  return max;
}

/** Where to cut `text` near `end`: after a space or a line break when one is close, never inside a surrogate pair. */
function cutAt(text: string, start: number, end: number): number {
  if (end >= text.length) return text.length;
  const space = Math.max(text.lastIndexOf(" ", end), text.lastIndexOf("\n", end));
  let cut = space > start + CHUNK_CHARS / 2 ? space + 1 : end;
  const code = text.charCodeAt(cut - 1);
  if (code >= 0xd800 && code <= 0xdbff) cut--;
  return cut;
}

/**
 * Refuses a prompt that cannot fit a context of `contextSize` tokens, without blocking the event
 * loop (so that /health and heartbeats keep answering while it is looked at):
 *
 * 1. by its size alone: a text of B bytes is at least B / maxTokenBytes tokens (see
 *    {@link maxTokenBytes}), so a 15 MB prompt for a 4,096-token context is refused at once;
 * 2. a prompt that may fit by that bound but is large is tokenized in chunks of 32 K characters,
 *    giving the event loop a turn between chunks, and refused as soon as the chunks hold more
 *    tokens than the context (less what a cut between two chunks can merge: 2 × maxTokenBytes per
 *    cut). What passes is then at most about a context's worth of text, which the caller tokenizes
 *    in one go.
 *
 * @throws PromptTooLongError (400 context_length_exceeded) with the lower bound it found; the
 *   signal's reason when the client went away meanwhile.
 */
export async function checkPromptSize(
  model: LlamaModel,
  texts: readonly string[],
  contextSize: number,
  maxBytes: number | undefined,
  signal?: AbortSignal,
): Promise<void> {
  let bytes = 0;
  for (const t of texts) bytes += Buffer.byteLength(t);
  if (maxBytes !== undefined) {
    const atLeast = Math.ceil(bytes / maxBytes);
    if (atLeast >= contextSize) throw new PromptTooLongError(atLeast, contextSize, true);
  }
  if (bytes <= CHUNK_CHARS) return;
  const perCut = 2 * (maxBytes ?? 64);
  let counted = 0;
  let cuts = 0;
  for (const text of texts) {
    for (let start = 0; start < text.length; ) {
      const end = cutAt(text, start, start + CHUNK_CHARS);
      counted += model.tokenize(text.slice(start, end), true).length;
      cuts++;
      start = end;
      const atLeast = counted - perCut * (cuts - 1);
      if (atLeast >= contextSize) throw new PromptTooLongError(atLeast, contextSize, true);
      await yieldToEventLoop();
      if (signal?.aborted) throw new RbeeError("the client went away", { statusCode: 499, code: "cancelled" });
    }
  }
}
