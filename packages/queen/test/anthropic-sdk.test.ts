import Anthropic from "@anthropic-ai/sdk";
import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import { postJson, postSse, quietLog, requireStoriesModel, tempRbeeDirs, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startToolModelCluster, type ToolModelCluster } from "./support/tool-model-cluster.js";

/**
 * Greedy sampling, so that a streamed answer equals the plain one. Anthropic's current SDK types no
 * longer list temperature/top_p/top_k (its API still takes them, and so does rbee): sent untyped.
 */
const greedy: object = { temperature: 0 };

async function raised<T extends Error>(p: Promise<unknown>, cls: abstract new (...args: never[]) => T): Promise<T> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(cls);
  return e as T;
}

// The official `@anthropic-ai/sdk` client, unmodified, against a real queen and a real hive that
// spawns a real llm worker on stories260K. API keys are on: the SDK sends its key as x-api-key.
describe("Anthropic Messages API through the queen (official @anthropic-ai/sdk, real hive and worker)", () => {
  let queen: Queen;
  let hive: Hive;
  let client: Anthropic;
  let key = "";
  let model = "";

  beforeAll(async () => {
    const dirs = tempRbeeDirs("anthropic");
    queen = await startQueen({
      log: quietLog("queen"),
      port: 0,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 1000,
    });
    hive = await startHive({
      log: quietLog("hive"),
      port: 0,
      queenUrl: queen.url,
      hiveId: "anthropic-hive",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 1000,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
    });
    await waitFor(() => (queen.registry.hives.get("anthropic-hive")?.state === "live" ? true : undefined));
    // the GGUF file, registered in the hive's catalog in place: its id is what clients name
    model = (await queen.scheduler.resolveModel(requireStoriesModel())).model;
    key = queen.keys.create("anthropic-test").key;
    client = new Anthropic({ baseURL: queen.url, apiKey: key, maxRetries: 0 });
  }, 60_000);
  afterAll(async () => {
    await hive?.close();
    await queen?.close();
  });

  it("messages.create: a message with text content, stop_reason and usage", async () => {
    const m = await client.messages.create({
      model,
      max_tokens: 20,
      ...greedy,
      system: "You tell short stories.",
      messages: [{ role: "user", content: "Tell me a story about a dog." }],
    });
    expect(m.id).toMatch(/^msg_/);
    expect(m.type).toBe("message");
    expect(m.role).toBe("assistant");
    expect(m.model).toBe(model);
    expect(m.content).toHaveLength(1);
    expect(m.content[0]?.type).toBe("text");
    expect((m.content[0] as Anthropic.TextBlock).text.length).toBeGreaterThan(0);
    expect(m.stop_reason).toBe("max_tokens");
    expect(m.stop_sequence).toBeNull();
    expect(m.usage.output_tokens).toBe(20);
    expect(m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0)).toBeGreaterThan(5);
  });

  it("messages.stream gives the same text and final message; the raw events come in Anthropic's order", async () => {
    const params = {
      model,
      max_tokens: 24,
      ...greedy,
      system: [
        { type: "text" as const, text: "You tell short stories.", cache_control: { type: "ephemeral" as const } },
      ],
      messages: [{ role: "user" as const, content: [{ type: "text" as const, text: "Tell me a story about a cat." }] }],
      metadata: { user_id: "test" },
    };
    const plain = await client.messages.create(params);
    let text = "";
    const stream = client.messages.stream(params);
    stream.on("text", (t) => {
      text += t;
    });
    const final = await stream.finalMessage();
    expect(text).toBe((plain.content[0] as Anthropic.TextBlock).text);
    expect(final.content).toEqual(plain.content);
    expect(final.stop_reason).toBe(plain.stop_reason);
    expect(final.usage.output_tokens).toBe(plain.usage.output_tokens);
    const total = (u: Anthropic.Usage) => u.input_tokens + (u.cache_read_input_tokens ?? 0);
    expect(total(final.usage)).toBe(total(plain.usage));

    // the raw events (the SDK's own iterator skips pings), each with its type as the SSE event name
    const raw = await postSse(`${queen.url}/v1/messages`, { ...params, stream: true }, { token: key });
    const types = raw.events.map((e) => e.event);
    expect(raw.events.every((e) => e.data.type === e.event)).toBe(true);
    expect(types.slice(0, 3)).toEqual(["message_start", "content_block_start", "ping"]);
    expect(types.slice(-3)).toEqual(["content_block_stop", "message_delta", "message_stop"]);
    expect(types.slice(3, -3).every((t) => t === "content_block_delta")).toBe(true);
    expect(types.length).toBeGreaterThan(6);
    const delta = raw.events.at(-2)?.data;
    expect(delta.delta).toEqual({ stop_reason: "max_tokens", stop_sequence: null, stop_details: null });
    expect(delta.usage.output_tokens).toBe(24);
  });

  it("stop_sequences: stop_reason stop_sequence names the one that matched, streamed or not", async () => {
    const m = await client.messages.create({
      model,
      max_tokens: 200,
      ...greedy,
      stop_sequences: ["zzz", "."],
      messages: [{ role: "user", content: "Once upon a time" }],
    });
    expect(m.stop_reason).toBe("stop_sequence");
    expect(m.stop_sequence).toBe(".");
    expect((m.content[0] as Anthropic.TextBlock).text).not.toContain(".");
    const streamed = await client.messages
      .stream({
        model,
        max_tokens: 200,
        ...greedy,
        stop_sequences: ["."],
        messages: [{ role: "user", content: "Once upon a time" }],
      })
      .finalMessage();
    expect(streamed.stop_reason).toBe("stop_sequence");
    expect(streamed.stop_sequence).toBe(".");
    // a stop sequence that never comes: the limit ends it (stories260K under a chat template never
    // ends a turn by itself, so end_turn is not reached here)
    const limited = await client.messages.create({
      model,
      max_tokens: 8,
      ...({ temperature: 0, top_p: 0.9, top_k: 40 } as object),
      stop_sequences: ["zzz"],
      messages: [{ role: "user", content: "Once upon a time" }],
    });
    expect(limited.stop_reason).toBe("max_tokens");
    expect(limited.stop_sequence).toBeNull();
  });

  it("output_config.format: a JSON schema constrains the text (structured outputs)", async () => {
    const m = await client.messages.create({
      model,
      max_tokens: 60,
      ...greedy,
      messages: [{ role: "user", content: "A cat:" }],
      output_config: {
        format: {
          type: "json_schema",
          schema: {
            type: "object",
            properties: { happy: { type: "boolean" }, legs: { enum: [3, 4] } },
            required: ["happy", "legs"],
          },
        },
      },
    });
    const value = JSON.parse((m.content[0] as Anthropic.TextBlock).text);
    expect(typeof value.happy).toBe("boolean");
    expect([3, 4]).toContain(value.legs);
  });

  it("what Claude Code sends besides (recorded from Claude Code 2.1.332) is accepted: system turns, adaptive thinking, context_management, ?beta=true", async () => {
    const r = await postJson(
      `${queen.url}/v1/messages?beta=true`,
      {
        model,
        max_tokens: 8,
        stream: false,
        system: [{ type: "text", text: "You are a storyteller.", cache_control: { type: "ephemeral" } }],
        messages: [
          { role: "user", content: [{ type: "text", text: "Once upon a time" }] },
          { role: "system", content: [{ type: "text", text: "# Environment\nA test." }] },
        ],
        tools: [],
        metadata: { user_id: "someone" },
        thinking: { type: "adaptive", display: "omitted" },
        context_management: { edits: [{ type: "clear_thinking_20251015", keep: "all" }] },
        output_config: { effort: "high" },
      },
      { headers: { "x-api-key": key, "anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219" } },
    );
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ type: "message", role: "assistant", stop_reason: "max_tokens" });
    expect(r.headers.get("request-id")).toBeTruthy();
  });

  it("count_tokens counts what messages.create bills as input, with the model's own template and tokenizer", async () => {
    const params = {
      model,
      system: "You count.",
      messages: [
        { role: "user" as const, content: "One two three." },
        { role: "assistant" as const, content: "Four five." },
        { role: "user" as const, content: "Six?" },
      ],
    };
    const counted = await client.messages.countTokens(params);
    const m = await client.messages.create({ ...params, max_tokens: 1 });
    expect(counted.input_tokens).toBe(m.usage.input_tokens + (m.usage.cache_read_input_tokens ?? 0));
    expect(counted.input_tokens).toBeGreaterThan(5);
  });

  it("API keys: x-api-key and Bearer both work; a wrong key is AuthenticationError in Anthropic's shape", async () => {
    const bearer = new Anthropic({ baseURL: queen.url, authToken: key, apiKey: null, maxRetries: 0 });
    const m = await bearer.messages.create({ model, max_tokens: 2, messages: [{ role: "user", content: "Hi" }] });
    expect(m.type).toBe("message");
    const wrong = new Anthropic({ baseURL: queen.url, apiKey: "sk-ant-wrong", maxRetries: 0 });
    const e = await raised(
      wrong.messages.create({ model, max_tokens: 2, messages: [{ role: "user", content: "Hi" }] }),
      Anthropic.AuthenticationError,
    );
    expect(e.status).toBe(401);
    expect(e.type).toBe("authentication_error");
    expect(e.message).toMatch(/incorrect API key provided/);
  });

  it("bad input: Anthropic's error shape, raised by the SDK as its own error classes with the reason", async () => {
    const missing = await raised(
      client.messages.create({ model, messages: [{ role: "user", content: "x" }] } as never),
      Anthropic.BadRequestError,
    );
    expect(missing.status).toBe(400);
    expect(missing.type).toBe("invalid_request_error");
    expect(missing.message).toMatch(/max_tokens/);
    const hot = await raised(
      client.messages.create({
        model,
        max_tokens: 5,
        ...({ temperature: 1.5 } as object),
        messages: [{ role: "user", content: "x" }],
      }),
      Anthropic.BadRequestError,
    );
    expect(hot.message).toMatch(/temperature/);
    const unknown = await raised(
      client.messages.create({ model: "claude-no-such", max_tokens: 5, messages: [{ role: "user", content: "x" }] }),
      Anthropic.NotFoundError,
    );
    expect(unknown.type).toBe("not_found_error");
    expect(unknown.message).toMatch(/model 'claude-no-such' was not found/);
    const image = await raised(
      client.messages.create({
        model,
        max_tokens: 5,
        messages: [
          {
            role: "user",
            content: [{ type: "image", source: { type: "base64", media_type: "image/png", data: "aGVsbG8=" } }],
          },
        ],
      }),
      Anthropic.BadRequestError,
    );
    expect(image.message).toMatch(/content blocks of type 'image' are not supported/);
    // a streamed request that fails before its first token is a plain HTTP error, raised the same way
    await raised(
      client.messages
        .stream({ model: "claude-no-such", max_tokens: 5, messages: [{ role: "user", content: "x" }] })
        .finalMessage(),
      Anthropic.NotFoundError,
    );
    // the raw body, and an unknown path under /v1/messages
    const raw = await postJson(`${queen.url}/v1/messages`, { model, messages: [] }, { headers: { "x-api-key": key } });
    expect(raw.status).toBe(400);
    expect(raw.body.type).toBe("error");
    expect(raw.body.error.type).toBe("invalid_request_error");
    const nowhere = await postJson(`${queen.url}/v1/messages/batches`, {}, { headers: { "x-api-key": key } });
    expect(nowhere.status).toBe(404);
    expect(nowhere.body).toEqual({
      type: "error",
      error: { type: "not_found_error", message: "no route for POST /v1/messages/batches" },
    });
  });
});

// Tool use, on stories260K's weights with Qwen2.5's tool-calling chat template (a real queen and llm
// worker): the tiny model's choices mean nothing; the wire shapes and the schema validity of its
// calls do, and those are what is checked.
describe("Anthropic tool use through the queen (official @anthropic-ai/sdk, tool-calling chat template)", () => {
  let cluster: ToolModelCluster;
  let client: Anthropic;
  const weather: Anthropic.Tool = {
    name: "get_weather",
    description: "The weather in a city",
    input_schema: {
      type: "object",
      properties: {
        city: { type: "string", maxLength: 40 },
        unit: { type: "string", enum: ["celsius", "fahrenheit"] },
        days: { type: "number" },
      },
      required: ["city", "unit", "days"],
      additionalProperties: false,
    },
  };
  const time: Anthropic.Tool = { name: "get_time", description: "The time now", input_schema: { type: "object" } };
  const expectWeatherInput = (input: unknown) => {
    const args = input as Record<string, unknown>;
    expect(Object.keys(args).sort()).toEqual(["city", "days", "unit"]);
    expect(typeof args.city).toBe("string");
    expect((args.city as string).length).toBeLessThanOrEqual(40);
    expect(["celsius", "fahrenheit"]).toContain(args.unit);
    // a JSON number, as the schema says; the Messages API has no seed, so the tiny model's sampled
    // digits vary from run to run, and may spell a number beyond a double (1e999 parses to Infinity)
    expect(typeof args.days).toBe("number");
  };

  beforeAll(async () => {
    cluster = await startToolModelCluster("anthropic-tools");
    client = new Anthropic({ baseURL: cluster.queen.url, apiKey: "unused-without-keys", maxRetries: 0 });
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it("a forced tool: stop_reason tool_use, a tool_use block whose input matches the schema", async () => {
    const m = await client.messages.create({
      model: cluster.model,
      max_tokens: 120,
      messages: [{ role: "user", content: "What is the weather in Paris for the next two days?" }],
      tools: [time, weather],
      tool_choice: { type: "tool", name: "get_weather", disable_parallel_tool_use: true },
    });
    expect(m.stop_reason).toBe("tool_use");
    const uses = m.content.filter((b): b is Anthropic.ToolUseBlock => b.type === "tool_use");
    expect(uses).toHaveLength(1);
    const use = uses[0] as Anthropic.ToolUseBlock;
    expect(use.id.length).toBeGreaterThan(0);
    expect(use.name).toBe("get_weather");
    expectWeatherInput(use.input);
  });

  it("streamed: tool_use blocks with input_json_delta, which messages.stream() assembles into the input", async () => {
    const stream = client.messages.stream({
      model: cluster.model,
      max_tokens: 120,
      messages: [{ role: "user", content: "Weather in Rome?" }],
      tools: [weather],
      tool_choice: { type: "any", disable_parallel_tool_use: true },
    });
    const kinds: string[] = [];
    stream.on("streamEvent", (e) => {
      if (e.type === "content_block_start") kinds.push(`start:${e.content_block.type}`);
      if (e.type === "content_block_delta") kinds.push(e.delta.type);
    });
    const final = await stream.finalMessage();
    expect(final.stop_reason).toBe("tool_use");
    const use = final.content.find((b): b is Anthropic.ToolUseBlock => b.type === "tool_use");
    expect(use?.name).toBe("get_weather");
    expectWeatherInput(use?.input);
    expect(kinds).toContain("start:tool_use");
    expect(kinds).toContain("input_json_delta");
  });

  it("a history with tool_use and tool_result blocks is taken, and count_tokens counts the tools too", async () => {
    const messages: Anthropic.MessageParam[] = [
      { role: "user", content: "Weather in Oslo?" },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Let me look." },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Oslo", unit: "celsius", days: 1 } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_1", content: [{ type: "text", text: "-3 degrees, snow" }] },
        ],
      },
    ];
    const m = await client.messages.create({
      model: cluster.model,
      max_tokens: 12,
      messages,
      tools: [weather],
      tool_choice: { type: "none" },
    });
    expect(m.stop_reason).toBe("max_tokens");
    expect(m.content[0]?.type).toBe("text");
    const withTools = await client.messages.countTokens({ model: cluster.model, messages, tools: [weather] });
    const without = await client.messages.countTokens({
      model: cluster.model,
      messages: [{ role: "user", content: "Weather in Oslo?" }],
    });
    expect(withTools.input_tokens).toBeGreaterThan(without.input_tokens + 20);
  });

  it("bad tools: a server tool, a tool_choice naming no tool, a tool_result in an assistant turn", async () => {
    const server = await raised(
      client.messages.create({
        model: cluster.model,
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
        tools: [{ type: "web_search_20250305", name: "web_search" }],
      }),
      Anthropic.BadRequestError,
    );
    expect(server.message).toMatch(/server tool 'web_search_20250305' runs on Anthropic's servers/);
    const named = await raised(
      client.messages.create({
        model: cluster.model,
        max_tokens: 5,
        messages: [{ role: "user", content: "x" }],
        tools: [weather],
        tool_choice: { type: "tool", name: "get_time" },
      }),
      Anthropic.BadRequestError,
    );
    expect(named.message).toMatch(/tool_choice names 'get_time', which is not one of the tools/);
    const misplaced = await raised(
      client.messages.create({
        model: cluster.model,
        max_tokens: 5,
        messages: [
          { role: "user", content: "x" },
          { role: "assistant", content: [{ type: "tool_result", tool_use_id: "t", content: "y" }] as never },
        ],
      }),
      Anthropic.BadRequestError,
    );
    expect(misplaced.message).toMatch(/a tool_result block belongs in a user turn; this turn is the assistant's/);
  });
});
