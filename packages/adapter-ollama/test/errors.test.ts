import {
  type OllamaApiFixture as Fixture,
  OllamaApiFixture,
  postJson,
  postSse,
  runRbee,
  startWorker,
  waitFor,
} from "@rbee/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startAttached, startFixture } from "./helpers.js";

// Ollama's failures, as the Ollama API FIXTURE replays them, through the adapter: each a clear rbee
// error with Ollama's own words, and a worker that goes on serving.
let fixture: Fixture;
const stops: (() => Promise<unknown>)[] = [];
beforeAll(async () => {
  fixture = await startFixture({ models: ["fixture-llama:latest"] });
});
afterEach(async () => {
  await Promise.all(stops.splice(0).map((s) => s()));
});
afterAll(async () => {
  await fixture.stop();
});

describe("ollama adapter on the Ollama API fixture: errors", () => {
  it("a model Ollama does not have fails the load with Ollama's words", async () => {
    await expect(startAttached(fixture, [], "no-such-model")).rejects.toThrow(
      /could not pull 'no-such-model'.*pull model manifest: file does not exist/,
    );
  });

  it("an Ollama that cannot pull (offline) but has the model serves it, saying so in the log", async () => {
    const offline = await startFixture({ models: [], pulled: ["local-only"] });
    stops.push(() => offline.stop());
    const w = await startAttached(offline, [], "local-only");
    stops.push(() => w.child.stop());
    const warning = w.child.stdout.split("\n").find((l) => l.includes("could not pull the model, but has it"));
    expect(warning).toMatch(/pull model manifest: file does not exist/);
    const r = await postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 2 });
    expect(r.status, r.text).toBe(200);
  });

  it("no Ollama at the URL fails the load saying what to do", async () => {
    const gone = new OllamaApiFixture();
    const url = await gone.start();
    await gone.stop();
    await expect(startWorker("ollama", ["--ollama-url", url], { model: "fixture-llama" })).rejects.toThrow(
      /no Ollama answers at http:\/\/127\.0\.0\.1:\d+.*ollama serve/,
    );
  });

  it("out of memory is a 503 insufficient_memory with Ollama's words", async () => {
    const w = await startAttached(fixture, [], "huge:70b");
    stops.push(() => w.child.stop());
    const r = await postJson(`${w.url}/v1/infer`, { prompt: "Once", max_tokens: 4 });
    expect(r.status, r.text).toBe(503);
    expect(r.body.error.code).toBe("insufficient_memory");
    expect(r.body.error.message).toMatch(/model requires more system memory \(40\.0 GiB\) than is available/);
  });

  it("a stream cut mid-way ends with one error event, and the worker serves the next request", async () => {
    const w = await startAttached(fixture);
    stops.push(() => w.child.stop());
    const cut = await postSse(`${w.url}/v1/infer`, { prompt: "CUT-STREAM please", max_tokens: 20, stream: true });
    expect(cut.status, JSON.stringify(cut)).toBe(200);
    expect(cut.events.filter((e) => e.event === "token")).toHaveLength(3);
    const terminal = cut.events.filter((e) => e.event === "done" || e.event === "error");
    expect(terminal.map((e) => e.event)).toEqual(["error"]);
    expect(JSON.stringify(terminal[0]?.data)).toMatch(/engine_stream_broken|closed mid-stream/);
    const plain = await postJson(`${w.url}/v1/infer`, { prompt: "CUT-STREAM again", max_tokens: 20 });
    expect(plain.status).toBe(502);
    const next = await postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 3 });
    expect(next.status, next.text).toBe(200);
    expect(next.body.text).toBe(", there was");
  });

  it("an Ollama that restarts mid-stream ends that request with an error event, and the worker serves after it", async () => {
    const slow = await startFixture({ chunkDelayMs: 30 });
    const port = Number(new URL(slow.url).port);
    const w = await startAttached(slow);
    stops.push(() => w.child.stop());
    const streaming = postSse(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 50, stream: true });
    await new Promise((r) => setTimeout(r, 150));
    await slow.stop(); // Ollama goes away in the middle of the stream...
    const cut = await streaming;
    expect(cut.events.filter((e) => e.event === "token").length).toBeGreaterThan(0);
    expect(cut.events.at(-1)?.event).toBe("error");
    const again = await startFixture({ port, pulled: ["fixture-llama"] }); // ...and comes back
    stops.push(() => again.stop());
    const next = await postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 3 });
    expect(next.status, next.text).toBe(200);
    expect(next.body.text).toBe(", there was");
  });

  it("a client that goes away closes the request to Ollama, which stops generating", async () => {
    const slow = await startFixture({ chunkDelayMs: 40 });
    stops.push(() => slow.stop());
    const w = await startAttached(slow);
    stops.push(() => w.child.stop());
    const ac = new AbortController();
    const res = await fetch(`${w.url}/v1/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 40, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body?.getReader();
    await reader?.read(); // the first bytes: generation is under way
    ac.abort();
    const stopped = await waitFor(() => slow.cancelled[0], 10_000, "the fixture to see its stream closed");
    expect(stopped.path).toBe("/api/generate");
    expect(stopped.sent).toBeLessThan(40);
  });

  it("a --keep-alive that is not a duration is refused before anything starts", async () => {
    const r = await runRbee(["worker", "serve", "ollama", "-m", "fixture-llama", "--keep-alive", "soon"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--keep-alive.*'soon' is invalid.*5m, 1h/);
  });

  it("the fixture answers Ollama's 400 for a request without a model, and for a bad format", async () => {
    const a = await postJson(`${fixture.url}/api/generate`, { prompt: "x" });
    expect(a).toMatchObject({ status: 400, body: { error: "model is required" } });
    const b = await postJson(`${fixture.url}/api/generate`, { model: "fixture-llama", prompt: "x", format: 7 });
    expect(b.status).toBe(400);
    expect(b.body.error).toMatch(/invalid format/);
  });
});
