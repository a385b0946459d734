import { InferResponse, ToolCallEvent } from "@rbee/contract";
import {
  getJson,
  postJson,
  postSse,
  type StartedWorker,
  startLlmWorker,
  toolCallingTestModel,
  waitFor,
} from "@rbee/testing";
import { toChatHistory } from "@rbee/worker-llm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const weather = {
  name: "get_weather",
  description: "The weather in a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string", maxLength: 40 }, days: { type: "number" } },
    required: ["city", "days"],
  },
};

function expectWeatherArguments(json: string): void {
  const args = JSON.parse(json) as Record<string, unknown>;
  expect(Object.keys(args).sort()).toEqual(["city", "days"]);
  expect(typeof args.city).toBe("string");
  expect((args.city as string).length).toBeLessThanOrEqual(40);
  expect(Number.isFinite(args.days)).toBe(true);
}

describe("toChatHistory: the worker contract's chat in node-llama-cpp's terms", () => {
  it("an assistant turn with tool calls, their results and the text after them are one model response", () => {
    const history = toChatHistory([
      { role: "user", content: "Weather?" },
      {
        role: "assistant",
        content: "Let me look.",
        tool_calls: [
          { id: "a", name: "get_weather", arguments: '{"city":"Paris"}' },
          { id: "b", name: "get_weather", arguments: '{"city":"Rome"}' },
        ],
      },
      { role: "tool", tool_call_id: "b", content: '{"t": 25}' },
      { role: "tool", tool_call_id: "a", content: "sunny" },
      { role: "assistant", content: "Paris is sunny, Rome is at 25." },
      { role: "user", content: "Thanks" },
    ]);
    expect(history).toEqual([
      { type: "user", text: "Weather?" },
      {
        type: "model",
        response: [
          "Let me look.",
          {
            type: "functionCall",
            name: "get_weather",
            params: { city: "Paris" },
            result: "sunny",
            startsNewChunk: true,
          },
          {
            type: "functionCall",
            name: "get_weather",
            params: { city: "Rome" },
            result: { t: 25 },
            startsNewChunk: false,
          },
          "Paris is sunny, Rome is at 25.",
        ],
      },
      { type: "user", text: "Thanks" },
    ]);
  });

  it("a tool message that answers no call is refused, naming it", () => {
    expect(() =>
      toChatHistory([
        { role: "user", content: "x" },
        { role: "tool", tool_call_id: "nowhere", content: "{}" },
      ]),
    ).toThrow(/messages\[1\] is a tool result/);
  });
});

describe("llm worker: tools through the worker contract (stories260K with Qwen2.5's template)", () => {
  let w: StartedWorker;

  beforeAll(async () => {
    w = await startLlmWorker(["--parallel", "2"], { model: await toolCallingTestModel() });
  });
  afterAll(async () => {
    await w?.child.stop();
  });

  it("declares the tools capability", async () => {
    const res = await fetch(`${w.url}/info`);
    expect(((await res.json()) as { capabilities: string[] }).capabilities).toContain("tools");
  });

  it("tool_choice required: finish_reason tool_calls and calls that match the schema", async () => {
    const res = await postJson(`${w.url}/v1/infer`, {
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [weather],
      tool_choice: "required",
      parallel_tool_calls: false,
      max_tokens: 300,
      seed: 1,
    });
    expect(res.status).toBe(200);
    const done = InferResponse.parse(res.body);
    expect(done.finish_reason).toBe("tool_calls");
    expect(done.tool_calls).toHaveLength(1);
    expect(done.tool_calls?.[0]?.name).toBe("get_weather");
    expect(done.tool_calls?.[0]?.id).toMatch(/^call_/);
    expectWeatherArguments(done.tool_calls?.[0]?.arguments ?? "");
    expect(done.tokens_generated).toBeGreaterThan(0);
  });

  it("streamed: tool_call events whose pieces join into the call of the done event", async () => {
    const { status, events } = await postSse(`${w.url}/v1/infer`, {
      messages: [{ role: "user", content: "Weather in Rome?" }],
      tools: [weather],
      tool_choice: { name: "get_weather" },
      parallel_tool_calls: false,
      max_tokens: 300,
      seed: 2,
      stream: true,
    });
    expect(status).toBe(200);
    const pieces = events.filter((e) => e.event === "tool_call").map((e) => ToolCallEvent.parse(e.data));
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces[0]).toMatchObject({ index: 0, name: "get_weather" });
    expect(pieces.slice(1).every((p) => p.id === undefined && p.name === undefined)).toBe(true);
    const last = events.at(-1);
    expect(last?.event).toBe("done");
    const done = InferResponse.parse(last?.data);
    expect(done.tool_calls?.[0]?.id).toBe(pieces[0]?.id);
    const joined = pieces.map((p) => p.arguments).join("");
    expect(JSON.parse(joined)).toEqual(JSON.parse(done.tool_calls?.[0]?.arguments ?? ""));
    expectWeatherArguments(joined);
  });

  it("a client that disconnects stops a turn that may call tools", async () => {
    const cancelled = async () => {
      const m = await getJson(`${w.url}/metrics`);
      return Number(/^rbee_worker_requests_total\{outcome="cancelled"\} (\d+)/m.exec(m.text)?.[1] ?? 0);
    };
    const before = await cancelled();
    // no max_tokens: left alone, the story would run to the end of the context
    const { disconnected } = await postSse(
      `${w.url}/v1/infer`,
      {
        messages: [{ role: "user", content: "Tell me a long story." }],
        tools: [weather],
        temperature: 0,
        stream: true,
      },
      { onEvent: (e) => (e.event === "token" && e.data.index >= 2 ? "stop" : undefined) },
    );
    expect(disconnected).toBe(true);
    await waitFor(async () => ((await cancelled()) > before ? true : undefined), 20_000, "a cancelled request");
  });

  it("a tool schema the grammar cannot express is a 400 naming it", async () => {
    const res = await postJson(`${w.url}/v1/infer`, {
      messages: [{ role: "user", content: "x" }],
      tools: [{ name: "f", parameters: { type: "object", properties: { a: { type: "strng" } } } }],
    });
    expect(res.status).toBe(400);
    expect(res.body.error.param).toBe("tools[0].parameters");
  });

  it("suffix builds a fill-in-the-middle prompt from the model's FIM tokens", async () => {
    const res = await postJson(`${w.url}/v1/infer`, {
      prompt: "Once upon a time",
      suffix: "The end.",
      max_tokens: 4,
      temperature: 0,
    });
    expect(res.status).toBe(200);
    const plain = await postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 1 });
    // prefix token + prompt + suffix token + suffix + middle token
    expect(res.body.prompt_tokens).toBeGreaterThan(plain.body.prompt_tokens + 3);
  });
});
