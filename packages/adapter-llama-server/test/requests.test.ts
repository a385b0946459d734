import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ErrorBody, InferResponse, WorkerHeartbeat } from "@rbee/contract";
import {
  getJson,
  postJson,
  postSse,
  requireLlamaServerOrSkip,
  STORIES_GREEDY_PREFIX,
  type StartedWorker,
  startLlamaServerWorker,
  waitFor,
} from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Serving, serving } from "./helpers.js";

// Requests through the adapter on the real llama-server, beyond the shared contract suite: what
// llama-server refuses, parallel slots, the prompt cache, chats in the model's template, heartbeats.
const LLAMA_SERVER = requireLlamaServerOrSkip();

describe.skipIf(LLAMA_SERVER === undefined)("llama-server adapter: requests", () => {
  let w: StartedWorker;
  let engine: Serving;
  let hub: Server;
  const beats: WorkerHeartbeat[] = [];
  const url = (path: string) => new URL(path, w.url).toString();

  beforeAll(async () => {
    // a heartbeat receiver standing in for the hive
    hub = createServer((req, res) => {
      let body = "";
      req.on("data", (d) => {
        body += d;
      });
      req.on("end", () => {
        beats.push(WorkerHeartbeat.parse(JSON.parse(body)));
        res.writeHead(200, { "content-type": "application/json" }).end('{"ack":true,"commands":[]}');
      });
    });
    await new Promise<void>((resolve) => hub.listen(0, "127.0.0.1", resolve));
    const hubUrl = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
    w = await startLlamaServerWorker(LLAMA_SERVER as string, [
      "--threads",
      "1",
      "--parallel",
      "4",
      `--heartbeat-url=${hubUrl}`,
      "--heartbeat-interval=0.2",
    ]);
    engine = await serving(w.child);
  });
  afterAll(async () => {
    await w?.child.stop();
    await new Promise((resolve) => hub?.close(resolve));
  });

  it("greedy text is llama.cpp's own: the story about Lily", async () => {
    const r = await postJson(url("/v1/infer"), { prompt: "Once upon a time", max_tokens: 12, temperature: 0 });
    expect(r.status, r.text).toBe(200);
    expect(InferResponse.parse(r.body).text.startsWith(STORIES_GREEDY_PREFIX)).toBe(true);
  });

  it("a stop string ends the text before it, and the response names it (stop_sequence)", async () => {
    const r = await postJson(url("/v1/infer"), {
      prompt: "Once upon a time",
      max_tokens: 60,
      temperature: 0,
      stop: ["zzz", "Lily"],
    });
    expect(r.status, r.text).toBe(200);
    const body = InferResponse.parse(r.body);
    expect(body.text).toBe(", there was a little girl named ");
    expect(body).toMatchObject({ finish_reason: "stop", stop_sequence: "Lily" });
  });

  it("4 requests at once run in the 4 slots and each gives the text it gives alone", async () => {
    const body = { prompt: "Once upon a time", max_tokens: 32, temperature: 0 };
    const alone = InferResponse.parse((await postJson(url("/v1/infer"), body)).body).text;
    const together = await Promise.all([0, 1, 2, 3].map(() => postJson(url("/v1/infer"), body)));
    for (const r of together) expect(InferResponse.parse(r.body).text).toBe(alone);
  });

  it("back-to-back streamed requests from 4 clients all succeed (llama-server closes a connection after a stream)", async () => {
    const client = async () => {
      for (let i = 0; i < 25; i++) {
        const r = await postSse(url("/v1/infer"), { prompt: "Once upon a time", max_tokens: 2, stream: true });
        expect(r.events.at(-1)?.event, JSON.stringify(r.events.at(-1))).toBe("done");
      }
    };
    await Promise.all([client(), client(), client(), client()]);
  });

  it("a repeated prompt is served from llama-server's prompt cache (cached_tokens)", async () => {
    const body = {
      prompt: "Once upon a time there was a dog named Max who liked to run",
      max_tokens: 2,
      temperature: 0,
    };
    await postJson(url("/v1/infer"), body);
    const again = InferResponse.parse((await postJson(url("/v1/infer"), body)).body);
    expect(again.cached_tokens).toBeGreaterThan(0);
    expect(again.prompt_tokens).toBeGreaterThan(again.cached_tokens as number);
  });

  it("a chat is formatted with the model's own template: the same text llama-server's chat endpoint gives", async () => {
    const messages = [{ role: "user", content: "Tell me a story about a cat." }];
    const ours = InferResponse.parse(
      (await postJson(url("/v1/infer"), { messages, max_tokens: 16, temperature: 0 })).body,
    );
    const theirs = await postJson(
      `${engine.engine_url}/v1/chat/completions`,
      { messages, max_tokens: 16, temperature: 0 },
      { token: engine.key },
    );
    expect(theirs.status, theirs.text).toBe(200);
    expect(ours.text).toBe(theirs.body.choices[0].message.content);
    expect(ours.prompt_tokens).toBe(theirs.body.usage.prompt_tokens);
  });

  it("a json_schema llama-server cannot use: 400 naming json_schema", async () => {
    const r = await postJson(url("/v1/infer"), { prompt: "x", json_schema: { type: "no-such-type" }, max_tokens: 4 });
    expect(r.status, r.text).toBe(400);
    const e = ErrorBody.parse(r.body).error;
    expect(e.param).toBe("json_schema");
    expect(e.message).toMatch(/^llama-server refused the request: .*no-such-type/s);
  });

  it("what the adapter does not map yet (logprobs, suffix, tools, tool messages) is a 400 that names it", async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ prompt: "Once", logprobs: 2 }, "logprobs"],
      [{ prompt: "Once", suffix: "end" }, "suffix"],
      [{ messages: [{ role: "user", content: "x" }], tools: [{ name: "f" }] }, "tools"],
      [
        {
          messages: [
            { role: "user", content: "x" },
            { role: "assistant", content: "", tool_calls: [{ id: "c", name: "f", arguments: "{}" }] },
          ],
        },
        "messages[1]",
      ],
    ];
    for (const [body, param] of cases) {
      const r = await postJson(url("/v1/infer"), { ...body, max_tokens: 2 });
      expect(r.status, r.text).toBe(400);
      expect(ErrorBody.parse(r.body).error.param).toBe(param);
      expect(r.body.error.message).toContain("llm worker");
    }
  });

  it("a prompt longer than the context: 400 context_length_exceeded with the numbers", async () => {
    const r = await postJson(url("/v1/infer"), { prompt: "hello ".repeat(5000), max_tokens: 4 });
    expect(r.status, r.text).toBe(400);
    const e = ErrorBody.parse(r.body).error;
    expect(e.code).toBe("context_length_exceeded");
    expect(e.message).toMatch(/the prompt is \d+ tokens but the context holds \d+/);
  });

  it("an embedding input longer than the context: 400 context_length_exceeded", async () => {
    const r = await postJson(url("/v1/embed"), { input: ["a dog", "hello ".repeat(5000)] });
    expect(r.status, r.text).toBe(400);
    expect(ErrorBody.parse(r.body).error.code).toBe("context_length_exceeded");
  });

  it("the heartbeat carries llama-server's own state: loaded model, engine memory, batch and throughput", async () => {
    // generate for a while so that llama-server's counters move between two polls
    const running = Promise.all(
      [0, 1].map(() =>
        postJson(url("/v1/infer"), { prompt: "Once upon a time", max_tokens: 400, temperature: 0.8, seed: 1 }),
      ),
    );
    await running;
    const beat = await waitFor(
      () => beats.findLast((b) => b.status === "Ready" && (b.throughput_tokens_per_second ?? 0) > 0),
      10_000,
      "a heartbeat with llama-server's throughput",
    );
    expect(beat.loaded_models).toEqual([w.model]);
    expect(beat.worker_type).toBe("llama-server");
    expect(beat.vram_used).toBeGreaterThan(1024 * 1024); // llama-server's resident memory
    expect(beat.memory_used).toBeGreaterThan(beat.vram_used);
    expect(beat.batch_size).toBeGreaterThanOrEqual(0);
    expect(beat.queue_depth).toBe(0);
    const info = await getJson(url("/info"));
    expect(info.body.pid).toBe(w.child.pid);
  });
});
