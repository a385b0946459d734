import type { ClusterWorkerTypes, JobEvent } from "@rbee/contract";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { ErrorNote } from "../ui";
import { useJob } from "../use-job";
import { useOpenAiChat } from "../use-openai-chat";

interface Message {
  role: "user" | "assistant" | "system";
  content: string;
  stats?: string;
}

interface InferResult {
  text: string;
  tokens_generated: number;
  prompt_tokens: number;
  finish_reason: string;
  worker_id: string;
  model: string;
  duration_ms: number;
}

/** Tokens/s between the first token and the end, from the queen's own timestamps. */
function tokensPerSecond(events: readonly JobEvent[]): number | undefined {
  const tokens = events.filter((e) => e.type === "token");
  const first = tokens[0];
  const end = events.at(-1);
  if (!first || !end || tokens.length < 2 || end.at <= first.at) return undefined;
  return ((tokens.length - 1) * 1000) / (end.at - first.at);
}

function Chat() {
  const [models, setModels] = useState<string[]>([]);
  const [model, setModel] = useState("");
  const [temperature, setTemperature] = useState("0.7");
  const [maxTokens, setMaxTokens] = useState("256");
  const [system, setSystem] = useState("");
  const [input, setInput] = useState("");
  const [history, setHistory] = useState<Message[]>([]);
  const [modelsError, setModelsError] = useState<unknown>();
  const job = useJob();
  const openai = useOpenAiChat();
  /** The job API names the worker that served the reply; the OpenAI route is what OpenAI clients use. */
  const [via, setVia] = useState<"job" | "openai">("job");
  const running = job.running || openai.running;
  const log = useRef<HTMLDivElement>(null);
  useEffect(() => {
    api<{ data: Array<{ id: string }> }>("/v1/models").then(
      (r) => {
        const ids = r.data.map((m) => m.id);
        setModels(ids);
        setModel((m) => m || ids[0] || "");
      },
      (err) => setModelsError(err),
    );
  }, []);
  const streamed =
    via === "openai"
      ? openai.streamed
      : job.events
          .filter((e) => e.type === "token")
          .map((e) => (e.type === "token" ? e.text : ""))
          .join("");
  const streamedTokens = via === "openai" ? openai.tokens : job.events.filter((e) => e.type === "token").length;
  useEffect(() => {
    const el = log.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [streamed, history.length]);
  const send = async () => {
    const text = input.trim();
    if (!text || !model) return;
    const before: Message[] = [...history, { role: "user", content: text }];
    setHistory(before);
    setInput("");
    const messages = [...(system.trim() ? [{ role: "system" as const, content: system.trim() }] : []), ...before].map(
      ({ role, content }) => ({ role, content }),
    );
    if (via === "openai") {
      const out = await openai.send({
        model,
        messages,
        temperature: Number(temperature),
        max_tokens: Number(maxTokens),
      });
      if (out) setHistory((h) => [...h, { role: "assistant", content: out.text, stats: out.stats }]);
      return;
    }
    const end = await job.start({
      type: "infer",
      model,
      messages,
      temperature: Number(temperature),
      max_tokens: Number(maxTokens),
    });
    if (!end) return;
    // the reply as streamed, with its figures
    setHistory((h) => [...h, reply(end)]);
  };
  // reads the job's events at the time it ended (they are in state by then)
  const eventsRef = useRef(job.events);
  eventsRef.current = job.events;
  const reply = (end: JobEvent): Message => {
    const events = eventsRef.current;
    const text = events.map((e) => (e.type === "token" ? e.text : "")).join("");
    const tps = tokensPerSecond(events);
    if (end.type === "done") {
      const r = end.result as InferResult;
      return {
        role: "assistant",
        content: r.text ?? text,
        stats: `${r.prompt_tokens} prompt + ${r.tokens_generated} generated tokens · ${tps ? `${tps.toFixed(0)} tok/s` : "–"} · ${r.finish_reason} · worker ${r.worker_id}`,
      };
    }
    const count = events.filter((e) => e.type === "token").length;
    return {
      role: "assistant",
      content: text,
      stats:
        end.type === "cancelled"
          ? `stopped after ${count} tokens`
          : `error: ${end.type === "error" ? end.message : ""}`,
    };
  };
  return (
    <section class="card chat" aria-labelledby="chat-title">
      <h2 id="chat-title">Chat</h2>
      <ErrorNote error={modelsError} />
      <div class="row wrap">
        <label class="grow">
          <span class="label">Model</span>
          <input
            name="chat-model"
            list="chat-models"
            value={model}
            placeholder={models.length === 0 ? "no model yet: add one under Models" : "model id"}
            onInput={(e) => setModel(e.currentTarget.value)}
          />
          <datalist id="chat-models">
            {models.map((id) => (
              <option key={id} value={id} />
            ))}
          </datalist>
        </label>
        <label>
          <span class="label">Temperature</span>
          <input
            name="temperature"
            type="number"
            min={0}
            max={2}
            step={0.1}
            value={temperature}
            onInput={(e) => setTemperature(e.currentTarget.value)}
          />
        </label>
        <label>
          <span class="label">Max tokens</span>
          <input
            name="max-tokens"
            type="number"
            min={1}
            max={32768}
            value={maxTokens}
            onInput={(e) => setMaxTokens(e.currentTarget.value)}
          />
        </label>
      </div>
      <fieldset class="via">
        <legend class="label">Send through</legend>
        <label class="check">
          <input type="radio" name="via" checked={via === "job"} disabled={running} onChange={() => setVia("job")} /> an{" "}
          <code>infer</code> job (names the worker)
        </label>
        <label class="check">
          <input
            type="radio"
            name="via"
            checked={via === "openai"}
            disabled={running}
            onChange={() => setVia("openai")}
          />{" "}
          <code>/v1/chat/completions</code> (as OpenAI clients do)
        </label>
      </fieldset>
      <details>
        <summary>System prompt</summary>
        <label>
          <span class="sr-only">System prompt</span>
          <textarea rows={2} value={system} onInput={(e) => setSystem(e.currentTarget.value)} />
        </label>
      </details>
      <div class="messages" ref={log} aria-live="polite" data-testid="chat-log">
        {history.map((m, i) => (
          <div key={i} class={`msg ${m.role}`}>
            <div class="bubble">{m.content}</div>
            {m.stats ? <div class="muted small stats">{m.stats}</div> : null}
          </div>
        ))}
        {running ? (
          <div class="msg assistant streaming">
            <div class="bubble" data-testid="streaming-reply">
              {streamed || <span class="muted">{job.events.at(-1)?.type === "narration" ? "loading…" : "…"}</span>}
            </div>
            <div class="muted small stats">
              {streamedTokens} tokens
              {job.events
                .filter((e) => e.type === "narration")
                .slice(-1)
                .map((e) => (e.type === "narration" ? ` · ${e.message}` : ""))}
            </div>
          </div>
        ) : null}
      </div>
      <ErrorNote error={via === "openai" ? openai.error : job.error} />
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
      >
        <label class="grow">
          <span class="sr-only">Message</span>
          <textarea
            name="message"
            rows={2}
            value={input}
            placeholder="Once upon a time"
            onInput={(e) => setInput(e.currentTarget.value)}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey) {
                e.preventDefault();
                void send();
              }
            }}
          />
        </label>
        {running ? (
          <button type="button" class="danger" onClick={() => (via === "openai" ? openai.stop() : void job.cancel())}>
            Stop
          </button>
        ) : (
          <button type="submit" class="primary" disabled={!input.trim() || !model}>
            Send
          </button>
        )}
        <button type="button" disabled={running || history.length === 0} onClick={() => setHistory([])}>
          Clear
        </button>
      </form>
    </section>
  );
}

function Images() {
  const [types, setTypes] = useState<ClusterWorkerTypes>();
  useEffect(() => {
    api<ClusterWorkerTypes>("/v1/worker-types").then(setTypes, () => undefined);
  }, []);
  const image = types?.types.find((t) => t.capabilities.includes("image-generation") && t.available_on.length > 0);
  return (
    <section class="card" aria-labelledby="images-title">
      <h2 id="images-title">Images</h2>
      {image ? (
        <p>
          Worker type <code>{image.id}</code> generates images on {image.available_on.join(", ")}; use{" "}
          <code>POST /v1/images/generations</code>.
        </p>
      ) : (
        <p class="muted" data-testid="no-image-worker">
          No image worker type installed. Image generation appears here once a hive has one (see{" "}
          <code>rbee worker types</code>).
        </p>
      )}
    </section>
  );
}

export function PlaygroundPage() {
  return (
    <>
      <h1>Playground</h1>
      <Chat />
      <Images />
    </>
  );
}
