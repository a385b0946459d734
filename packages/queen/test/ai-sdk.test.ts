import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { APICallError, generateObject, generateText, stepCountIs, streamText, tool } from "ai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { startToolModelCluster, type ToolModelCluster } from "./support/tool-model-cluster.js";

// The Vercel AI SDK (`ai` with `@ai-sdk/openai-compatible`), unmodified, against a real queen and a
// real llm worker on stories260K with Qwen2.5's tool-calling chat template. What is checked is what
// the SDK makes of rbee's answers (tool calls parsed and validated by the SDK against the zod schema,
// tool results fed back, streamed text, objects), not the tiny model's judgement.

const weatherInput = z.object({
  city: z.string().max(40),
  unit: z.enum(["celsius", "fahrenheit"]),
});

describe("Vercel AI SDK (@ai-sdk/openai-compatible) against the queen", () => {
  let cluster: ToolModelCluster;
  let provider: ReturnType<typeof createOpenAICompatible>;

  beforeAll(async () => {
    cluster = await startToolModelCluster("ai-sdk");
    provider = createOpenAICompatible({
      name: "rbee",
      baseURL: cluster.baseURL,
      apiKey: "unused-without-keys",
      includeUsage: true,
      supportsStructuredOutputs: true,
    });
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it("generateText with tools: the SDK parses and validates the call, runs the tool and feeds the result back", async () => {
    const executed: Array<z.infer<typeof weatherInput>> = [];
    const result = await generateText({
      model: provider(cluster.model),
      prompt: "What is the weather in Paris?",
      tools: {
        getWeather: tool({
          description: "The weather in a city",
          inputSchema: weatherInput,
          execute: async (input) => {
            executed.push(input);
            return { temperature: 21, unit: input.unit };
          },
        }),
      },
      toolChoice: "required",
      providerOptions: { rbee: { parallel_tool_calls: false } },
      maxOutputTokens: 300,
      seed: 3,
      maxRetries: 0,
    });
    const first = result.steps[0];
    expect(first?.finishReason).toBe("tool-calls");
    expect(first?.toolCalls).toHaveLength(1);
    const call = first?.toolCalls[0];
    expect(call?.toolName).toBe("getWeather");
    expect(call?.dynamic).toBeFalsy();
    // the SDK validated the input against the zod schema: an invalid one would be a tool-error
    expect(weatherInput.safeParse(call?.input).success).toBe(true);
    expect(executed).toEqual([call?.input]);
    expect(first?.toolResults[0]?.output).toEqual({
      temperature: 21,
      unit: (call?.input as { unit?: string } | undefined)?.unit,
    });
    expect(first?.content.some((p) => p.type === "tool-error")).toBe(false);
  });

  it("a second step sends the tool call and its result back, and the model answers or calls again", async () => {
    const result = await generateText({
      model: provider(cluster.model),
      prompt: "What is the weather in Oslo?",
      tools: {
        getWeather: tool({
          description: "The weather in a city",
          inputSchema: weatherInput,
          execute: async () => ({ temperature: -3 }),
        }),
      },
      stopWhen: stepCountIs(2),
      prepareStep: ({ stepNumber }) => (stepNumber === 0 ? { toolChoice: "required" } : { toolChoice: "none" }),
      // room for a whole call (the arguments are grammar-bound, a call cut by the limit is no call)
      maxOutputTokens: 200,
      seed: 5,
      maxRetries: 0,
    });
    expect(result.steps).toHaveLength(2);
    expect(result.steps[0]?.finishReason).toBe("tool-calls");
    // the second request carried the assistant tool call and the tool message: rbee took both
    const second = result.steps[1];
    expect(["stop", "length"]).toContain(second?.finishReason);
    expect(second?.toolCalls).toHaveLength(0);
    expect(second?.usage.outputTokens).toBeGreaterThan(0);
  });

  it("streamText streams text deltas that add up to the text, with usage", async () => {
    const result = streamText({
      model: provider(cluster.model),
      prompt: "Tell me a story about a dog.",
      maxOutputTokens: 20,
      temperature: 0,
      maxRetries: 0,
    });
    let streamed = "";
    let parts = 0;
    for await (const delta of result.textStream) {
      streamed += delta;
      parts++;
    }
    expect(parts).toBeGreaterThan(1);
    expect(streamed).toBe(await result.text);
    expect(streamed.length).toBeGreaterThan(0);
    expect((await result.usage).outputTokens).toBe(20);
    expect(await result.finishReason).toBe("length");
  });

  it("streamText with a tool: the streamed call is parsed against the schema", async () => {
    const result = streamText({
      model: provider(cluster.model),
      prompt: "Weather in Rome?",
      tools: { getWeather: tool({ description: "The weather in a city", inputSchema: weatherInput }) },
      toolChoice: { type: "tool", toolName: "getWeather" },
      providerOptions: { rbee: { parallel_tool_calls: false } },
      maxOutputTokens: 300,
      seed: 7,
      maxRetries: 0,
    });
    const inputDeltas: string[] = [];
    for await (const part of result.fullStream) if (part.type === "tool-input-delta") inputDeltas.push(part.delta);
    const calls = await result.toolCalls;
    expect(calls).toHaveLength(1);
    expect(calls[0]?.toolName).toBe("getWeather");
    expect(weatherInput.safeParse(calls[0]?.input).success).toBe(true);
    expect(inputDeltas.length).toBeGreaterThan(1);
    expect(await result.finishReason).toBe("tool-calls");
  });

  it("generateObject: grammar-constrained JSON that the SDK validates against the schema", async () => {
    const schema = z.object({
      name: z.string().max(40),
      age: z.number(),
      pet: z.enum(["cat", "dog", "bird"]),
    });
    const { object, finishReason } = await generateObject({
      model: provider(cluster.model),
      schema,
      prompt: "Describe a child in a story.",
      maxOutputTokens: 80,
      temperature: 0,
      maxRetries: 0,
    });
    expect(schema.safeParse(object).success).toBe(true);
    expect(finishReason).toBe("stop");
  });

  it("an unknown model is the SDK's APICallError with rbee's message", async () => {
    const err = await generateText({ model: provider("no-such-model"), prompt: "x", maxRetries: 0 }).catch(
      (e: unknown) => e,
    );
    expect(APICallError.isInstance(err)).toBe(true);
    expect((err as APICallError).statusCode).toBe(404);
    expect((err as APICallError).message).toContain("no-such-model");
  });
});
