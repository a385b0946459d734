import type { WorkerEngine, WorkerRuntime } from "@rbee/worker-kit";
import { afterEach, describe, expect, it } from "vitest";
import { startRuntime } from "./fixtures/runtime.js";

// The signal an engine gets with a request aborts when the client leaves or when a shutdown's grace
// period ends, and only while the request runs: a finished request's signal is let go by the
// worker's own long-lived signal (which would otherwise keep every request's signal for the
// worker's whole life).

/** The signals the engine was given, by prompt (infer) or input (embed). */
const seen = new Map<string, AbortSignal>();
/** Prompts and inputs "hold ..." wait until their signal aborts; others are answered at once. */
const holds = (text: string) => text.startsWith("hold");
const untilAborted = (signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });

const engine: WorkerEngine = {
  workerType: "test",
  implementation: "test-engine",
  version: "1",
  capabilities: ["text-generation", "embeddings"],
  async load() {
    return { modelId: "m", slots: 4 };
  },
  async infer(req, { signal }) {
    const prompt = req.prompt ?? "";
    seen.set(prompt, signal);
    if (holds(prompt)) await untilAborted(signal);
    return { text: "ok", tokensGenerated: 1, promptTokens: 1, finishReason: signal.aborted ? "cancelled" : "stop" };
  },
  async embed(req, { signal }) {
    const input = typeof req.input === "string" ? req.input : req.input.join(" ");
    seen.set(input, signal);
    if (holds(input)) await untilAborted(signal);
    return { embeddings: [[0.5, 0.5]], prompt_tokens: 1 };
  },
  async dispose() {},
};

let runtime: WorkerRuntime | undefined;

async function startWorker(): Promise<WorkerRuntime> {
  seen.clear();
  runtime = await startRuntime(engine, { shutdownGraceMs: 200 });
  return runtime;
}
afterEach(async () => {
  await runtime?.shutdown("the test is over");
  runtime = undefined;
});

const post = (w: WorkerRuntime, path: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${w.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
}

describe("a request's signal", () => {
  it("aborts when the client disconnects", async () => {
    const w = await startWorker();
    const client = new AbortController();
    const infer = post(w, "/v1/infer", { prompt: "hold infer" }, client.signal).catch(() => undefined);
    const embed = post(w, "/v1/embed", { input: "hold embed" }, client.signal).catch(() => undefined);
    await until("both requests to reach the engine", () => seen.has("hold infer") && seen.has("hold embed"));
    client.abort();
    await Promise.all([infer, embed]);
    await until("the engine's signals to abort", () => seen.get("hold infer")?.aborted === true);
    await until("the engine's signals to abort", () => seen.get("hold embed")?.aborted === true);
  });

  it("aborts when a shutdown's grace period ends, and only for the requests still running", async () => {
    const w = await startWorker();
    // finished before the shutdown
    expect((await post(w, "/v1/infer", { prompt: "at once infer" })).status).toBe(200);
    expect((await post(w, "/v1/embed", { input: "at once embed" })).status).toBe(200);
    // still running when it comes
    const infer = post(w, "/v1/infer", { prompt: "hold infer" });
    const embed = post(w, "/v1/embed", { input: "hold embed" });
    await until("both requests to reach the engine", () => seen.has("hold infer") && seen.has("hold embed"));
    await w.shutdown("the test stops the worker");
    const [i, e] = await Promise.all([infer, embed]);
    expect(i.status).toBe(200);
    expect(((await i.json()) as { finish_reason: string }).finish_reason).toBe("cancelled");
    expect(e.status).toBe(200);
    const held = seen.get("hold infer");
    expect(held?.aborted).toBe(true);
    expect((held?.reason as Error | undefined)?.message).toBe("the worker is shutting down");
    expect(seen.get("hold embed")?.aborted).toBe(true);
    // the finished requests' signals were unlinked from the worker's: the forced stop did not reach them
    expect(seen.get("at once infer")?.aborted).toBe(false);
    expect(seen.get("at once embed")?.aborted).toBe(false);
  });
});
