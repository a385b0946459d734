import { AIMessage, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { ChatOpenAI } from "@langchain/openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { startToolModelCluster, type ToolModelCluster } from "./support/tool-model-cluster.js";

// LangChain.js's ChatOpenAI (`@langchain/openai`), unmodified, against a real queen and a real llm
// worker on stories260K with Qwen2.5's tool-calling chat template: bindTools and
// withStructuredOutput, checked for what LangChain makes of the answers (parsed tool calls,
// schema-valid structured output), not for the tiny model's judgement.

const weatherSchema = z.object({
  city: z.string().max(40),
  unit: z.enum(["celsius", "fahrenheit"]),
});

describe("LangChain ChatOpenAI against the queen", () => {
  let cluster: ToolModelCluster;
  let chat: ChatOpenAI;

  beforeAll(async () => {
    cluster = await startToolModelCluster("langchain");
    chat = new ChatOpenAI({
      model: cluster.model,
      apiKey: "unused-without-keys",
      configuration: { baseURL: cluster.baseURL },
      maxRetries: 0,
      maxTokens: 300,
      temperature: 0.8,
    });
  });
  afterAll(async () => {
    await cluster?.close();
  });

  const getWeather = tool(async ({ city }) => JSON.stringify({ city, temperature: 21 }), {
    name: "get_weather",
    description: "The weather in a city",
    schema: weatherSchema,
  });

  it("bindTools with tool_choice any: an AIMessage with parsed tool calls that match the schema", async () => {
    const model = chat.bindTools([getWeather], { tool_choice: "any", parallel_tool_calls: false });
    const message = await model.invoke([new HumanMessage("What is the weather in Paris?")], { seed: 2 } as never);
    expect(message.tool_calls).toHaveLength(1);
    const call = message.tool_calls?.[0];
    expect(call?.name).toBe("get_weather");
    expect(call?.id).toMatch(/^call_/);
    expect(weatherSchema.safeParse(call?.args).success).toBe(true);
    expect(message.invalid_tool_calls ?? []).toHaveLength(0);
    expect(message.response_metadata.finish_reason).toBe("tool_calls");

    // the tool runs on the call, and the history with its ToolMessage goes back to rbee
    const result = (await getWeather.invoke(call as never)) as ToolMessage;
    expect(result).toBeInstanceOf(ToolMessage);
    const answer = await chat.invoke([new HumanMessage("What is the weather in Paris?"), message, result], {
      max_tokens: 12,
    } as never);
    expect(answer).toBeInstanceOf(AIMessage);
    expect(typeof answer.content).toBe("string");
  });

  it("bindTools streamed: the tool call chunks concatenate into a parsed call", async () => {
    const model = chat.bindTools([getWeather], { tool_choice: "get_weather", parallel_tool_calls: false });
    let merged: AIMessage | undefined;
    let chunks = 0;
    for await (const chunk of await model.stream([new HumanMessage("Weather in Oslo?")])) {
      chunks++;
      merged = merged === undefined ? chunk : (merged as never as typeof chunk).concat(chunk);
    }
    expect(chunks).toBeGreaterThan(1);
    const call = merged?.tool_calls?.[0];
    expect(call?.name).toBe("get_weather");
    expect(weatherSchema.safeParse(call?.args).success).toBe(true);
  });

  for (const method of ["functionCalling", "jsonSchema"] as const) {
    it(`withStructuredOutput (${method}) returns an object that matches the schema`, async () => {
      const schema = z.object({ name: z.string().max(40), happy: z.boolean(), legs: z.number() }).describe("an animal");
      const structured = chat.withStructuredOutput(schema, { method, name: "animal" });
      const value = await structured.invoke("Describe a cat.");
      expect(schema.safeParse(value).success).toBe(true);
    });
  }
});
