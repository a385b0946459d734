import { useRef, useState } from "preact/hooks";
import { parseJson, readSse } from "./api";

export interface ChatRequest {
  model: string;
  messages: Array<{ role: "system" | "user" | "assistant"; content: string }>;
  temperature: number;
  max_tokens: number;
}

export interface ChatOutcome {
  text: string;
  stats: string;
}

interface ChatChunk {
  choices?: Array<{ delta?: { content?: string | null }; finish_reason?: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  error?: { message?: string };
}

/**
 * A streamed chat through the OpenAI route (`POST /v1/chat/completions`, `stream: true`), read as
 * OpenAI's SDKs read it. Stop aborts the request: the queen stops the generation behind it.
 */
export function useOpenAiChat() {
  const [running, setRunning] = useState(false);
  const [streamed, setStreamed] = useState("");
  const [tokens, setTokens] = useState(0);
  const [error, setError] = useState<unknown>();
  const abort = useRef<AbortController>();
  return {
    running,
    streamed,
    tokens,
    error,
    stop() {
      abort.current?.abort();
    },
    async send(req: ChatRequest): Promise<ChatOutcome | undefined> {
      const ac = new AbortController();
      abort.current = ac;
      setRunning(true);
      setStreamed("");
      setTokens(0);
      setError(undefined);
      let text = "";
      let count = 0;
      let first: number | undefined;
      let last: number | undefined;
      let usage: ChatChunk["usage"];
      let finish = "";
      try {
        await readSse(
          "/v1/chat/completions",
          (m) => {
            if (m.data === "[DONE]") return;
            const chunk = parseJson<ChatChunk>(m.data);
            if (!chunk) return;
            if (chunk.error?.message) throw new Error(chunk.error.message);
            if (chunk.usage) usage = chunk.usage;
            const choice = chunk.choices?.[0];
            const piece = choice?.delta?.content;
            if (piece) {
              last = performance.now();
              first ??= last;
              count++;
              text += piece;
              setStreamed(text);
              setTokens(count);
            }
            if (choice?.finish_reason) finish = choice.finish_reason;
          },
          { signal: ac.signal, body: { ...req, stream: true, stream_options: { include_usage: true } } },
        );
        const seconds = first !== undefined && last !== undefined && count > 1 ? (last - first) / 1000 : 0;
        const tps = seconds > 0 ? `${((count - 1) / seconds).toFixed(0)} tok/s` : "–";
        const counts = usage ? `${usage.prompt_tokens} prompt + ${usage.completion_tokens} generated tokens` : "";
        return {
          text,
          stats: `${counts} · ${tps} · ${finish} · via /v1/chat/completions (its reply does not name the worker)`,
        };
      } catch (err) {
        if (ac.signal.aborted) return { text, stats: `stopped after ${count} tokens` };
        setError(err);
        return undefined;
      } finally {
        setRunning(false);
      }
    },
  };
}
