import { join } from "node:path";
import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import {
  getJson,
  type HubServer,
  postJson,
  quietLog,
  STORIES_GREEDY_PREFIX,
  STORIES_MODEL,
  startHubServer,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import { Ollama, type ProgressResponse } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startToolModelCluster, type ToolModelCluster } from "./support/tool-model-cluster.js";

const REF = "ggml-org/models:tinyllamas/stories260K.gguf";

/** The error an ollama-js call raised (ResponseError for HTTP errors, a plain Error from a stream). */
async function raised(p: Promise<unknown>): Promise<Error & { status_code?: number; error?: string }> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, "expected the call to fail").toBeInstanceOf(Error);
  return e as Error & { status_code?: number };
}

// The official `ollama` npm client, unmodified, against a real queen and a real hive that spawns
// real llm workers on stories260K. The model comes from the Hugging Face Hub fixture
// (packages/testing/src/hub-server) through /api/pull, as `ollama pull` would fetch it.
describe("Ollama API through the queen (official ollama client, real hive and workers)", () => {
  let hub: HubServer;
  let queen: Queen;
  let hive: Hive;
  let client: Ollama;
  let model = "";

  beforeAll(async () => {
    hub = await startHubServer({
      repos: { "ggml-org/models": { files: { "tinyllamas/stories260K.gguf": { path: STORIES_MODEL } } } },
    });
    const dirs = tempRbeeDirs("ollama");
    queen = await startQueen({
      log: quietLog("queen"),
      port: 0,
      ollamaPort: 0,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 1000,
      sweepIntervalMs: 200,
    });
    hive = await startHive({
      log: quietLog("hive"),
      port: 0,
      queenUrl: queen.url,
      hiveId: "ollama-hive",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 1000,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
      env: { ...process.env, HF_ENDPOINT: hub.url, HF_TOKEN: "", HF_HOME: join(dirs.root, "no-hf-home") },
    });
    await waitFor(() => (queen.registry.hives.get("ollama-hive")?.state === "live" ? true : undefined));
    client = new Ollama({ host: queen.url });
  }, 60_000);
  afterAll(async () => {
    await hive?.close();
    await queen?.close();
    await hub?.close();
  });

  it("version, and an empty list before anything is pulled", async () => {
    expect((await client.version()).version).toMatch(/^\d+\.\d+\.\d+$/);
    expect((await client.list()).models).toEqual([]);
    expect((await client.ps()).models).toEqual([]);
  });

  it("pull streams progress lines from rbee's download, then the model is listed with its details", async () => {
    hub.faults.bytesPerSecond = 4 * 1024 * 1024; // a few progress lines, not one
    const lines: ProgressResponse[] = [];
    for await (const p of await client.pull({ model: REF, stream: true })) lines.push(p);
    hub.faults.bytesPerSecond = undefined;
    expect(lines[0]?.status).toBe("pulling manifest");
    const progress = lines.filter((l) => l.digest);
    expect(progress.length).toBeGreaterThan(0);
    const last = progress.at(-1) as ProgressResponse;
    expect(last.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(last.status).toBe(`pulling ${last.digest.slice(7, 19)}`);
    expect(last.total).toBe(1185376);
    expect(last.completed).toBe(last.total);
    expect(lines.map((l) => l.status).slice(-3)).toEqual(["verifying sha256 digest", "writing manifest", "success"]);

    const listed = (await client.list()).models;
    expect(listed).toHaveLength(1);
    const m = listed[0] as (typeof listed)[number];
    expect(m.name).toMatch(/:latest$/);
    expect(m.model).toBe(m.name);
    expect(m.size).toBe(1185376);
    expect(m.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(m.details).toMatchObject({ format: "gguf", family: "llama", families: ["llama"] });
    expect(m.details.quantization_level).toBeTruthy();
    model = m.name;
    // pulled again: already there, nothing downloaded
    hub.stats.reset();
    expect(await client.pull({ model: REF, stream: false })).toEqual({ status: "success" });
    expect(hub.stats.bytesServed("ggml-org/models/tinyllamas/stories260K.gguf")).toBe(0);
  });

  it("show gives details, model_info with the context length (as Continue reads it) and capabilities", async () => {
    const s = await client.show({ model });
    expect(s.details.family).toBe("llama");
    const info = s.model_info as unknown as Record<string, unknown>;
    expect(info["general.architecture"]).toBe("llama");
    expect(info["llama.context_length"]).toBe(2048); // the GGUF header's, as Ollama reports it
    expect(info["llama.block_count"]).toBeGreaterThan(0);
    expect(s.capabilities).toContain("completion");
    expect(typeof s.template).toBe("string");
    // without the tag too, as rbee's own id
    expect((await client.show({ model: model.replace(/:latest$/, "") })).details.family).toBe("llama");
  });

  it("generate (raw), not streamed: greedy text, Ollama's counts and durations", async () => {
    const r = await client.generate({
      model,
      prompt: "Once upon a time",
      raw: true,
      options: { temperature: 0, num_predict: 20 },
    });
    expect(r.model).toBe(model);
    expect(r.response?.startsWith(STORIES_GREEDY_PREFIX)).toBe(true);
    expect(r.done).toBe(true);
    expect(r.done_reason).toBe("length");
    expect(r.eval_count).toBe(20);
    expect(r.prompt_eval_count).toBe(5);
    expect(r.total_duration).toBeGreaterThan(0);
    expect(r.eval_duration).toBeGreaterThan(0);
    expect(new Date(r.created_at).getTime()).toBeGreaterThan(0);
  });

  it("generate streamed as NDJSON gives the same text, then one final line with the counts", async () => {
    const options = { temperature: 0, num_predict: 30, stop: ["Lily"] };
    const plain = await client.generate({ model, prompt: "Once upon a time", raw: true, options });
    let text = "";
    const parts = [];
    for await (const part of await client.generate({
      model,
      prompt: "Once upon a time",
      raw: true,
      options,
      stream: true,
    })) {
      parts.push(part);
      text += part.response;
    }
    expect(text).toBe(plain.response);
    expect(text).toBe(", there was a little girl named ");
    expect(parts.length).toBeGreaterThan(2);
    expect(parts.slice(0, -1).every((p) => p.done === false)).toBe(true);
    expect(parts.at(-1)).toMatchObject({ done: true, done_reason: "stop", response: "" });
  });

  it("chat, streamed and not, with seed and keep_alive; /api/ps shows the worker with expires_at from the keep-alive", async () => {
    const messages = [{ role: "user", content: "Tell me a story about a dog." }];
    const options = { temperature: 0, num_predict: 24, seed: 7, num_ctx: 4096 };
    const plain = await client.chat({ model, messages, options, keep_alive: "10m" });
    expect(plain.message.role).toBe("assistant");
    expect(plain.message.content.length).toBeGreaterThan(0);
    expect(plain.done).toBe(true);
    let text = "";
    let last: { done: boolean; done_reason?: string; eval_count?: number } | undefined;
    for await (const part of await client.chat({ model, messages, options, stream: true, keep_alive: "10m" })) {
      expect(part.message.role).toBe("assistant");
      text += part.message.content;
      last = part;
    }
    expect(text).toBe(plain.message.content);
    expect(last).toMatchObject({ done: true, done_reason: plain.done_reason, eval_count: plain.eval_count });

    const ps = (await client.ps()).models;
    expect(ps).toHaveLength(1);
    const running = ps[0] as (typeof ps)[number];
    expect(running.name).toBe(model);
    expect(running.size).toBeGreaterThan(0);
    expect(running.size_vram).toBe(0); // a CPU worker
    const left = new Date(running.expires_at).getTime() - Date.now();
    expect(left).toBeGreaterThan(9 * 60_000);
    expect(left).toBeLessThanOrEqual(10 * 60_000);
    expect((running as unknown as { context_length: number }).context_length).toBeGreaterThan(0);
  });

  it('format: a JSON schema constrains the output; "json" gives a JSON object', async () => {
    const schema = {
      type: "object",
      properties: { happy: { type: "boolean" }, legs: { enum: [3, 4] } },
      required: ["happy", "legs"],
    };
    const r = await client.chat({
      model,
      messages: [{ role: "user", content: "A cat:" }],
      format: schema,
      options: { temperature: 0, num_predict: 60 },
    });
    const value = JSON.parse(r.message.content);
    expect(typeof value.happy).toBe("boolean");
    expect([3, 4]).toContain(value.legs);
    const j = await client.generate({
      model,
      prompt: "A dog:",
      format: "json",
      options: { temperature: 0, num_predict: 60 },
    });
    expect(typeof JSON.parse(j.response ?? "")).toBe("object");
  });

  it("logprobs and top_logprobs, in one piece and per streamed message", async () => {
    const r = await client.generate({
      model,
      prompt: "Once upon a time",
      raw: true,
      logprobs: true,
      top_logprobs: 2,
      options: { temperature: 0, num_predict: 5 },
    });
    expect(r.logprobs).toHaveLength(5);
    const first = r.logprobs?.[0];
    expect(first?.logprob).toBeLessThanOrEqual(0);
    expect(first?.top_logprobs).toHaveLength(2);
    // greedy: the chosen token is the most likely one
    expect(first?.top_logprobs?.[0]?.token).toBe(first?.token);
    expect((r.logprobs ?? []).map((l) => l.token).join("")).toBe(r.response);
    let streamed = 0;
    for await (const part of await client.chat({
      model,
      messages: [{ role: "user", content: "Hi" }],
      logprobs: true,
      options: { temperature: 0, num_predict: 5 },
      stream: true,
    }))
      streamed += part.logprobs?.length ?? 0;
    expect(streamed).toBe(5);
  });

  it("embed (unit vectors) and the older embeddings", async () => {
    const e = await client.embed({ model, input: ["a cat", "a dog"] });
    expect(e.model).toBe(model);
    expect(e.embeddings).toHaveLength(2);
    const v = e.embeddings[0] as number[];
    expect(v.length).toBeGreaterThan(0);
    expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    expect(e.prompt_eval_count).toBeGreaterThan(0);
    const old = await client.embeddings({ model, prompt: "a cat" });
    expect(old.embedding.length).toBe(v.length);
  });

  it("the Ollama API alone on its own port (RBEE_OLLAMA_PORT), as Ollama answers on 11434", async () => {
    expect(queen.ollamaUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const root = await fetch(queen.ollamaUrl);
    expect(await root.text()).toBe("Ollama is running");
    const other = new Ollama({ host: queen.ollamaUrl });
    expect((await other.list()).models.map((m) => m.name)).toEqual([model]);
    // only the Ollama API there
    const openai = await getJson(`${queen.ollamaUrl}/v1/models`);
    expect(openai.status).toBe(404);
    expect(openai.body).toEqual({ error: "no route for GET /v1/models" });
  });

  it('bad input: Ollama\'s {"error"} shape with the status, raised by the client as ResponseError', async () => {
    const unknown = await raised(client.chat({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }));
    expect(unknown.name).toBe("ResponseError");
    expect(unknown.status_code).toBe(404);
    expect(unknown.message).toMatch(/model 'no-such-model' was not found/);
    const badOption = await raised(client.generate({ model, prompt: "x", options: { temperature: -1 } }));
    expect(badOption.status_code).toBe(400);
    expect(badOption.message).toMatch(/options\.temperature/);
    const badFormat = await raised(client.generate({ model, prompt: "x", format: "xml" }));
    expect(badFormat.status_code).toBe(400);
    expect(badFormat.message).toMatch(/format "xml" is not "json" or a JSON schema/);
    const badKeepAlive = await raised(client.generate({ model, prompt: "x", keep_alive: "soon" }));
    expect(badKeepAlive.message).toMatch(/keep_alive "soon" is not a duration/);
    const images = await raised(
      client.chat({ model, messages: [{ role: "user", content: "x", images: ["aGVsbG8="] }] }),
    );
    expect(images.status_code).toBe(400);
    expect(images.message).toMatch(/images is not supported/);
    const fim = await raised(client.generate({ model, prompt: "x", suffix: "y" }));
    expect(fim.status_code).toBe(400);
    expect(fim.message).toMatch(/needs a model with FIM tokens/);
    const pull = await raised(client.pull({ model: "ggml-org/no-such-repo:x.gguf" }));
    expect(pull.status_code).toBe(404);
    // the raw shapes: unknown fields are ignored as Ollama ignores them; broken JSON is a 400; an unknown /api path a 404
    const raw = await postJson(`${queen.url}/api/generate`, "{not json");
    expect(raw.status).toBe(400);
    expect(Object.keys(raw.body)).toEqual(["error"]);
    const lenient = await postJson(`${queen.url}/api/generate`, {
      model,
      prompt: "Once upon a time",
      raw: true,
      stream: false,
      some_future_field: true,
      options: { temperature: 0, num_predict: 3, num_gpu: 99, mirostat: 0 },
    });
    expect(lenient.status, lenient.text).toBe(200);
    const nowhere = await postJson(`${queen.url}/api/copy`, { source: model, destination: "x" });
    expect(nowhere.status).toBe(404);
    expect(nowhere.body).toEqual({ error: "no route for POST /api/copy" });
  });

  it("keep_alive 0 without a prompt unloads the model (as Open WebUI does); an empty request loads it again", async () => {
    const unloaded = await client.generate({ model, prompt: "", keep_alive: 0 });
    expect(unloaded).toMatchObject({ done: true, done_reason: "unload", response: "" });
    await waitFor(async () => ((await client.ps()).models.length === 0 ? true : undefined), 10_000);
    const loaded = await client.chat({ model, messages: [], keep_alive: "1m" });
    expect(loaded).toMatchObject({ done: true, done_reason: "load", message: { role: "assistant", content: "" } });
    expect((await client.ps()).models).toHaveLength(1);
    await client.chat({ model, messages: [], keep_alive: 0 });
    await waitFor(async () => ((await client.ps()).models.length === 0 ? true : undefined), 10_000);
  });

  it("delete removes the model from the hive's catalog; deleting it again is a 404", async () => {
    await client.delete({ model });
    expect((await client.list()).models).toEqual([]);
    const again = await raised(client.delete({ model }));
    expect(again.status_code).toBe(404);
    expect(again.message).toMatch(/was not found/);
  });
});

// Tool calling through /api/chat, on stories260K's weights with Qwen2.5's tool-calling chat template
// (a real queen and llm worker). Ollama has no tool_choice, and with `auto` the tiny model's choice
// means nothing; rbee's tool_choice extension (sent through the client as an extra field, which
// ollama-js passes on) forces a call, so that the wire shape and the schema validity are checked.
describe("Ollama tool calling through the queen (official ollama client, tool-calling chat template)", () => {
  let cluster: ToolModelCluster;
  let client: Ollama;
  const weather = {
    type: "function",
    function: {
      name: "get_weather",
      description: "The weather in a city",
      parameters: {
        type: "object",
        properties: {
          city: { type: "string", maxLength: 40 },
          unit: { type: "string", enum: ["celsius", "fahrenheit"] },
          days: { type: "number" },
        },
        required: ["city", "unit", "days"],
      },
    },
  };
  const expectWeatherArguments = (args: Record<string, unknown>) => {
    expect(Object.keys(args).sort()).toEqual(["city", "days", "unit"]);
    expect(typeof args.city).toBe("string");
    expect((args.city as string).length).toBeLessThanOrEqual(40);
    expect(["celsius", "fahrenheit"]).toContain(args.unit);
    expect(Number.isFinite(args.days)).toBe(true);
  };
  const forced = { tool_choice: "required", parallel_tool_calls: false } as object;

  beforeAll(async () => {
    cluster = await startToolModelCluster("ollama-tools");
    client = new Ollama({ host: cluster.queen.url });
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it("show lists the tools capability of a worker that calls tools", async () => {
    expect((await client.show({ model: cluster.model })).capabilities).toContain("tools");
  });

  it("chat with tools: message.tool_calls with arguments as an object that matches the schema", async () => {
    const r = await client.chat({
      model: cluster.model,
      messages: [{ role: "user", content: "What is the weather in Paris for the next two days?" }],
      tools: [weather],
      options: { num_predict: 120, temperature: 0, seed: 3 },
      ...forced,
    });
    expect(r.done).toBe(true);
    const calls = r.message.tool_calls ?? [];
    expect(calls).toHaveLength(1);
    expect(calls[0]?.function.name).toBe("get_weather");
    expectWeatherArguments(calls[0]?.function.arguments ?? {});
  });

  it("streamed: the call comes whole in one message before the last line, as Ollama streams it", async () => {
    const parts = [];
    for await (const part of await client.chat({
      model: cluster.model,
      messages: [{ role: "user", content: "Weather in Rome?" }],
      tools: [weather],
      options: { num_predict: 120, temperature: 0, seed: 3 },
      stream: true,
      ...forced,
    }))
      parts.push(part);
    const withCalls = parts.filter((p) => (p.message.tool_calls ?? []).length > 0);
    expect(withCalls).toHaveLength(1);
    expect(withCalls[0]?.done).toBe(false);
    expectWeatherArguments(withCalls[0]?.message.tool_calls?.[0]?.function.arguments ?? {});
    expect(parts.at(-1)).toMatchObject({ done: true });
  });

  it("a history with the assistant's tool_calls and the tool's answer (no ids, as Ollama sends them) is taken", async () => {
    const r = await client.chat({
      model: cluster.model,
      messages: [
        { role: "user", content: "Weather in Oslo?" },
        {
          role: "assistant",
          content: "",
          tool_calls: [{ function: { name: "get_weather", arguments: { city: "Oslo", unit: "celsius", days: 1 } } }],
        },
        { role: "tool", content: "-3 degrees, snow", tool_name: "get_weather" },
      ],
      tools: [weather],
      options: { num_predict: 8 },
      ...({ tool_choice: "none" } as object),
    });
    expect(r.done_reason).toBe("length");
    expect(r.message.tool_calls ?? []).toEqual([]);
  });

  it("generate with suffix: fill-in-the-middle with the model's FIM tokens (Continue's autocomplete)", async () => {
    const r = await client.generate({
      model: cluster.model,
      prompt: "Once upon a time",
      suffix: " The end.",
      options: { num_predict: 8, temperature: 0 },
    });
    expect(r.done).toBe(true);
    expect(r.eval_count).toBeGreaterThan(0);
    expect(typeof r.response).toBe("string");
  });

  it("bad tools are a 400 naming them", async () => {
    const e = await raised(
      client.chat({
        model: cluster.model,
        messages: [{ role: "user", content: "x" }],
        tools: [weather],
        ...({ tool_choice: { function: { name: "get_time" } } } as object),
      }),
    );
    expect(e.status_code).toBe(400);
    expect(e.message).toMatch(/tool_choice names 'get_time', which is not one of the tools/);
  });
});
