import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type OllamaApiFixture, postJson, postSse, type StartedWorker, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURE_MODEL, startAttached, startFixture } from "./helpers.js";

// What the adapter sends Ollama and what it makes of the replies, checked on the Ollama API FIXTURE
// (which records every request body): the translation, keep_alive, and the heartbeat from /api/ps.
let fixture: OllamaApiFixture;
let worker: StartedWorker;
let sink: Server;
const heartbeats: Record<string, unknown>[] = [];

beforeAll(async () => {
  sink = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString("utf8");
    });
    req.on("end", () => {
      if (req.url === "/v1/worker-heartbeat") heartbeats.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ ack: true, commands: [] }));
    });
  });
  await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
  const port = (sink.address() as AddressInfo).port;
  fixture = await startFixture();
  worker = await startAttached(fixture, [
    "--keep-alive",
    "10m",
    "--heartbeat-url",
    `http://127.0.0.1:${port}`,
    "--heartbeat-interval",
    "0.2",
  ]);
}, 60_000);

afterAll(async () => {
  await worker?.child.stop();
  await fixture?.stop();
  await new Promise<void>((r) => sink.close(() => r()));
});

const last = (path: string) => fixture.requests.filter((r) => r.path === path).at(-1)?.body ?? {};

describe("ollama adapter on the Ollama API fixture: requests", () => {
  it("load pulled the model through /api/pull and checked it with /api/show", () => {
    expect(last("/api/pull")).toMatchObject({ model: FIXTURE_MODEL, stream: true });
    expect(last("/api/show")).toMatchObject({ model: FIXTURE_MODEL });
    expect(worker.child.stdout).toMatch(/ollama pull fixture-llama: pulling [0-9a-f]+ 50%/);
    expect(worker.child.stdout).toMatch(/ollama pull fixture-llama: success/);
  });

  it("a prompt goes to /api/generate raw, with sampling in options, num_predict, stop and keep_alive", async () => {
    const r = await postJson(`${worker.url}/v1/infer`, {
      prompt: "Once upon a time",
      max_tokens: 5,
      temperature: 0.5,
      top_k: 7,
      top_p: 0.9,
      seed: 42,
      stop: ["zzz"],
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ text: ", there was a little", tokens_generated: 5, finish_reason: "length" });
    expect(r.body.prompt_tokens).toBe(4);
    expect(last("/api/generate")).toMatchObject({
      model: FIXTURE_MODEL,
      prompt: "Once upon a time",
      raw: true,
      stream: true,
      keep_alive: "10m",
      options: { num_predict: 5, temperature: 0.5, top_k: 7, top_p: 0.9, seed: 42, stop: ["zzz"], repeat_penalty: 1 },
    });
  });

  it("messages go to /api/chat; done_reason stop is finish_reason stop", async () => {
    const r = await postJson(`${worker.url}/v1/infer`, {
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Tell me a story." },
      ],
      max_tokens: 500,
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.text).toMatch(/^Once upon a time.*The end\.$/);
    expect(r.body.finish_reason).toBe("stop");
    expect(last("/api/chat")).toMatchObject({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Tell me a story." },
      ],
      keep_alive: "10m",
    });
  });

  it("json_schema becomes Ollama's format", async () => {
    const schema = { type: "object", properties: { story: { type: "string" } }, required: ["story"] };
    const r = await postJson(`${worker.url}/v1/infer`, {
      prompt: "Once upon a time",
      json_schema: schema,
      max_tokens: 4,
    });
    expect(r.status, r.text).toBe(200);
    expect(JSON.parse(r.body.text as string)).toEqual({ story: ", there was a" });
    expect(last("/api/generate").format).toEqual(schema);
  });

  it("embeddings go to /api/embed with keep_alive", async () => {
    const r = await postJson(`${worker.url}/v1/embed`, { input: ["a", "b"] });
    expect(r.status, r.text).toBe(200);
    expect(r.body.embeddings).toHaveLength(2);
    expect(last("/api/embed")).toMatchObject({ model: FIXTURE_MODEL, input: ["a", "b"], keep_alive: "10m" });
  });

  it("the heartbeat carries loaded_models and vram_allocations from /api/ps", async () => {
    await postSse(`${worker.url}/v1/infer`, { prompt: "Once", max_tokens: 2, stream: true });
    const hb = await waitFor(
      () => heartbeats.find((h) => Array.isArray(h.loaded_models) && (h.loaded_models as string[]).length > 0),
      10_000,
      "a heartbeat with loaded_models",
    );
    expect(hb.loaded_models).toEqual(["fixture-llama:latest"]);
    expect(hb.vram_allocations).toEqual({ "fixture-llama:latest": 200 * 1024 * 1024 });
    expect(hb.vram_used).toBe(200 * 1024 * 1024);
  });
});
