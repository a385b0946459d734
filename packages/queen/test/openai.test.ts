import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startToolModelCluster, type ToolModelCluster } from "./support/tool-model-cluster.js";

// The official `openai` npm client, unmodified, against a real queen and a real llm worker on
// stories260K with Qwen2.5's tool-calling chat template. The tiny model's choices mean nothing; the
// wire shapes and the schema validity of its calls do, and those are what is checked.

const weather: OpenAI.ChatCompletionFunctionTool = {
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
      additionalProperties: false,
    },
  },
};
const time: OpenAI.ChatCompletionFunctionTool = {
  type: "function",
  function: { name: "get_time", description: "The time now", parameters: { type: "object", properties: {} } },
};

/** The arguments of a get_weather call, checked against its schema by hand. */
function expectWeatherArguments(json: string): void {
  const args = JSON.parse(json) as Record<string, unknown>;
  expect(Object.keys(args).sort()).toEqual(["city", "days", "unit"]);
  expect(typeof args.city).toBe("string");
  expect((args.city as string).length).toBeLessThanOrEqual(40);
  expect(["celsius", "fahrenheit"]).toContain(args.unit);
  expect(Number.isFinite(args.days)).toBe(true);
}

describe("openai npm client: tools, logprobs, n, suffix, responses", () => {
  let cluster: ToolModelCluster;
  let client: OpenAI;

  beforeAll(async () => {
    cluster = await startToolModelCluster("openai-client");
    client = new OpenAI({ baseURL: cluster.baseURL, apiKey: "unused-without-keys", maxRetries: 0 });
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it("tool_choice required: tool calls whose arguments parse against the schema", async () => {
    for (const seed of [1, 2, 3]) {
      const c = await client.chat.completions.create({
        model: cluster.model,
        messages: [{ role: "user", content: "What is the weather in Paris for the next two days?" }],
        tools: [weather],
        tool_choice: "required",
        parallel_tool_calls: false,
        max_tokens: 300,
        seed,
      });
      const choice = c.choices[0];
      expect(choice?.finish_reason).toBe("tool_calls");
      const calls = choice?.message.tool_calls ?? [];
      expect(calls).toHaveLength(1);
      const call = calls[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
      expect(call.type).toBe("function");
      expect(call.id).toMatch(/^call_/);
      expect(call.function.name).toBe("get_weather");
      expectWeatherArguments(call.function.arguments);
    }
  });

  it("a named tool_choice calls that tool; the other tools are still offered", async () => {
    const c = await client.chat.completions.create({
      model: cluster.model,
      messages: [{ role: "user", content: "Weather in Rome?" }],
      tools: [time, weather],
      tool_choice: { type: "function", function: { name: "get_weather" } },
      max_tokens: 400,
      seed: 4,
    });
    const calls = (c.choices[0]?.message.tool_calls ?? []) as OpenAI.ChatCompletionMessageFunctionToolCall[];
    expect(calls.length).toBeGreaterThanOrEqual(1);
    expect(calls[0]?.function.name).toBe("get_weather");
    for (const call of calls) {
      expect(["get_weather", "get_time"]).toContain(call.function.name);
      if (call.function.name === "get_weather") expectWeatherArguments(call.function.arguments);
      else expect(JSON.parse(call.function.arguments)).toEqual({});
    }
    expect(new Set(calls.map((x) => x.id)).size).toBe(calls.length);
  });

  it("streamed tool calls arrive as OpenAI's tool_calls deltas and assemble into the same shape", async () => {
    const stream = await client.chat.completions.create({
      model: cluster.model,
      messages: [{ role: "user", content: "Weather in Oslo?" }],
      tools: [weather],
      tool_choice: "required",
      parallel_tool_calls: false,
      max_tokens: 300,
      seed: 5,
      stream: true,
    });
    const calls: Array<{ id?: string; name?: string; arguments: string }> = [];
    let finish: string | null | undefined;
    let deltas = 0;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      finish = choice?.finish_reason ?? finish;
      for (const d of choice?.delta.tool_calls ?? []) {
        deltas++;
        calls[d.index] ??= { arguments: "" };
        const call = calls[d.index] as { id?: string; name?: string; arguments: string };
        if (d.id) {
          expect(call.id).toBeUndefined(); // id and name come once, in the call's first delta
          call.id = d.id;
          call.name = d.function?.name;
          expect(d.type).toBe("function");
        }
        call.arguments += d.function?.arguments ?? "";
      }
    }
    expect(finish).toBe("tool_calls");
    expect(calls).toHaveLength(1);
    expect(deltas).toBeGreaterThan(1); // the arguments stream as they are generated
    expect(calls[0]?.id).toMatch(/^call_/);
    expect(calls[0]?.name).toBe("get_weather");
    expectWeatherArguments(calls[0]?.arguments ?? "");
  });

  it("the SDK's stream helper assembles the streamed call", async () => {
    const runner = client.chat.completions.stream({
      model: cluster.model,
      messages: [{ role: "user", content: "Weather in Lima?" }],
      tools: [weather],
      tool_choice: "required",
      parallel_tool_calls: false,
      max_tokens: 300,
      seed: 6,
    });
    const final = await runner.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe("get_weather");
    expectWeatherArguments(call.function.arguments);
  });

  it("a history with an assistant tool call and its tool result is accepted; tool_choice none answers in text", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: "system", content: "You are a weather assistant." },
      { role: "user", content: "Weather in Paris?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "call_1",
            type: "function",
            function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius","days":1}' },
          },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: '{"temperature": 21}' },
    ];
    const none = await client.chat.completions.create({
      model: cluster.model,
      messages,
      tools: [weather],
      tool_choice: "none",
      max_tokens: 12,
      temperature: 0,
    });
    expect(none.choices[0]?.message.tool_calls).toBeUndefined();
    expect(["stop", "length"]).toContain(none.choices[0]?.finish_reason);
    expect(none.usage?.completion_tokens).toBeGreaterThan(0);

    const auto = await client.chat.completions.create({
      model: cluster.model,
      messages,
      tools: [weather],
      max_tokens: 40,
      seed: 1,
    });
    const choice = auto.choices[0];
    // the model may answer or call again; either way the shape is OpenAI's
    if (choice?.finish_reason === "tool_calls") {
      const call = choice.message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
      expectWeatherArguments(call.function.arguments);
    } else {
      expect(typeof choice?.message.content).toBe("string");
      expect(choice?.message.tool_calls).toBeUndefined();
    }
  });

  it("a tool result that answers no call is a 400 naming the message", async () => {
    const err = await client.chat.completions
      .create({
        model: cluster.model,
        messages: [
          { role: "user", content: "hi" },
          { role: "tool", tool_call_id: "call_nowhere", content: "{}" },
        ],
        tools: [weather],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("messages[1].tool_call_id");
  });

  it("a tool schema the grammar cannot express is a 400 naming the construct", async () => {
    const err = await client.chat.completions
      .create({
        model: cluster.model,
        messages: [{ role: "user", content: "hi" }],
        tools: [
          {
            type: "function",
            function: { name: "f", parameters: { type: "object", properties: { a: { type: "strng" } } } },
          },
        ],
        tool_choice: "required",
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const bad = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(bad.param).toBe("tools[0].parameters");
    expect(bad.message).toContain("strng");
  });

  it("logprobs on chat: one entry per generated token, greedy picks the most likely", async () => {
    const c = await client.chat.completions.create({
      model: cluster.model,
      messages: [{ role: "user", content: "Tell me a story." }],
      max_tokens: 8,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    const content = c.choices[0]?.logprobs?.content ?? [];
    expect(content).toHaveLength(c.usage?.completion_tokens ?? -1);
    for (const l of content) {
      expect(l.logprob).toBeLessThanOrEqual(0);
      expect(l.top_logprobs).toHaveLength(3);
      // at temperature 0 the chosen token is the most likely one
      expect(l.top_logprobs[0]?.token).toBe(l.token);
      expect(l.top_logprobs[0]?.logprob).toBeCloseTo(l.logprob, 6);
      expect(Buffer.from(l.bytes ?? []).toString("utf8")).toBe(l.token);
    }
    expect(content.map((l) => l.token).join("")).toBe(c.choices[0]?.message.content);
  });

  it("logprobs on completions, streamed and not, in the legacy shape", async () => {
    const plain = await client.completions.create({
      model: cluster.model,
      prompt: "Once upon a time",
      max_tokens: 6,
      temperature: 0,
      logprobs: 2,
    });
    const lp = plain.choices[0]?.logprobs;
    expect(lp?.tokens).toHaveLength(6);
    expect(lp?.token_logprobs).toHaveLength(6);
    expect(Object.keys(lp?.top_logprobs?.[0] ?? {}).length).toBeLessThanOrEqual(2);
    expect(lp?.text_offset?.[0]).toBe(0);
    expect(lp?.tokens?.join("")).toBe(plain.choices[0]?.text);
    const stream = await client.completions.create({
      model: cluster.model,
      prompt: "Once upon a time",
      max_tokens: 6,
      temperature: 0,
      logprobs: 2,
      stream: true,
    });
    const tokens: string[] = [];
    for await (const chunk of stream) tokens.push(...(chunk.choices[0]?.logprobs?.tokens ?? []));
    expect(tokens).toEqual(lp?.tokens);
  });

  it("n > 1 gives n choices, streamed and not", async () => {
    const c = await client.chat.completions.create({
      model: cluster.model,
      messages: [{ role: "user", content: "A story, please." }],
      max_tokens: 6,
      n: 3,
      seed: 11,
    });
    expect(c.choices.map((x) => x.index)).toEqual([0, 1, 2]);
    for (const x of c.choices) expect(typeof x.message.content).toBe("string");
    expect(c.usage?.completion_tokens).toBeGreaterThanOrEqual(3);
    const stream = await client.completions.create({
      model: cluster.model,
      prompt: "Once upon a time",
      max_tokens: 5,
      temperature: 0,
      n: 2,
      stream: true,
    });
    const texts = ["", ""];
    const finished = new Set<number>();
    for await (const chunk of stream)
      for (const x of chunk.choices) {
        texts[x.index] += x.text;
        if (x.finish_reason) finished.add(x.index);
      }
    expect([...finished].sort()).toEqual([0, 1]);
    // greedy: both choices are the same text
    expect(texts[0]).toBe(texts[1]);
    expect(texts[0]?.length).toBeGreaterThan(0);
  });

  it("suffix: fill-in-the-middle with the model's FIM tokens", async () => {
    const c = await client.completions.create({
      model: cluster.model,
      prompt: "Once upon a time",
      suffix: "and they lived happily ever after.",
      max_tokens: 8,
      temperature: 0,
    });
    expect(c.choices[0]?.finish_reason).toBe("length");
    expect(c.usage?.completion_tokens).toBe(8);
    // the prompt is prefix + suffix + the three FIM tokens (and BOS): more than the prefix alone
    const plain = await client.completions.create({ model: cluster.model, prompt: "Once upon a time", max_tokens: 1 });
    expect(c.usage?.prompt_tokens).toBeGreaterThan((plain.usage?.prompt_tokens ?? 0) + 3);
  });

  it("responses.create: text input with instructions", async () => {
    const r = await client.responses.create({
      model: cluster.model,
      instructions: "You tell stories.",
      input: "Tell me a story about a cat.",
      max_output_tokens: 10,
      temperature: 0,
    });
    expect(r.object).toBe("response");
    expect(r.id).toMatch(/^resp_/);
    expect(["completed", "incomplete"]).toContain(r.status);
    expect(r.output[0]?.type).toBe("message");
    expect(r.output_text.length).toBeGreaterThan(0);
    expect(r.usage?.output_tokens).toBeGreaterThan(0);
    expect(r.usage?.total_tokens).toBe((r.usage?.input_tokens ?? 0) + (r.usage?.output_tokens ?? 0));
  });

  it("responses.create streamed: the events build the same text as the reply", async () => {
    const input: OpenAI.Responses.ResponseInput = [{ role: "user", content: "Tell me a story about a dog." }];
    const plain = await client.responses.create({ model: cluster.model, input, max_output_tokens: 12, temperature: 0 });
    const stream = await client.responses.create({
      model: cluster.model,
      input,
      max_output_tokens: 12,
      temperature: 0,
      stream: true,
    });
    const types: string[] = [];
    let text = "";
    let final: OpenAI.Responses.Response | undefined;
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === "response.output_text.delta") text += e.delta;
      if (e.type === "response.completed" || e.type === "response.incomplete") final = e.response;
    }
    expect(types[0]).toBe("response.created");
    expect(types).toContain("response.output_item.added");
    expect(types).toContain("response.output_text.done");
    expect(types.at(-1)).toMatch(/^response\.(completed|incomplete)$/);
    expect(text).toBe(plain.output_text);
    expect(final?.output_text ?? final?.output.length).toBeTruthy();
    // the SDK's stream helper accumulates the events into the final response
    const helper = client.responses.stream({ model: cluster.model, input, max_output_tokens: 12, temperature: 0 });
    expect((await helper.finalResponse()).output_text).toBe(plain.output_text);
  });

  it("responses.create with function tools: a function_call item, then its output in the next input", async () => {
    const tool: OpenAI.Responses.FunctionTool = {
      type: "function",
      name: "get_weather",
      description: "The weather in a city",
      parameters: weather.function.parameters ?? null,
      strict: true,
    };
    const r = await client.responses.create({
      model: cluster.model,
      input: "Weather in Paris?",
      tools: [tool],
      tool_choice: "required",
      parallel_tool_calls: false,
      max_output_tokens: 300,
    });
    const call = r.output.find((o) => o.type === "function_call") as OpenAI.Responses.ResponseFunctionToolCall;
    expect(call.name).toBe("get_weather");
    expectWeatherArguments(call.arguments);

    const stream = client.responses.stream({
      model: cluster.model,
      input: [
        { role: "user", content: "Weather in Paris?" },
        call,
        { type: "function_call_output", call_id: call.call_id, output: '{"temperature": 21}' },
      ],
      tools: [tool],
      tool_choice: "required",
      parallel_tool_calls: false,
      max_output_tokens: 300,
    });
    let argumentDeltas = 0;
    stream.on("response.function_call_arguments.delta", () => argumentDeltas++);
    const second = await stream.finalResponse();
    const again = second.output.find((o) => o.type === "function_call") as OpenAI.Responses.ResponseFunctionToolCall;
    expectWeatherArguments(again.arguments);
    expect(argumentDeltas).toBeGreaterThan(1);
  });

  it("responses.create with text.format json_schema: output_text is JSON matching the schema", async () => {
    const r = await client.responses.create({
      model: cluster.model,
      input: "A cat:",
      max_output_tokens: 60,
      temperature: 0,
      text: {
        format: {
          type: "json_schema",
          name: "cat",
          schema: {
            type: "object",
            properties: { happy: { type: "boolean" }, legs: { enum: [3, 4] } },
            required: ["happy", "legs"],
            additionalProperties: false,
          },
        },
      },
    });
    const value = JSON.parse(r.output_text) as { happy: unknown; legs: unknown };
    expect(typeof value.happy).toBe("boolean");
    expect([3, 4]).toContain(value.legs);
    expect(r.status).toBe("completed");
  });

  it("responses.create refuses what rbee cannot serve with a 400 naming it", async () => {
    const stored = (await client.responses
      .create({ model: cluster.model, input: "hi", previous_response_id: "resp_123" })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(stored).toBeInstanceOf(OpenAI.BadRequestError);
    expect(stored.param).toBe("previous_response_id");
    const builtin = (await client.responses
      .create({ model: cluster.model, input: "hi", tools: [{ type: "web_search" }] })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(builtin).toBeInstanceOf(OpenAI.BadRequestError);
    expect(builtin.param).toBe("tools[0]");
  });
});
