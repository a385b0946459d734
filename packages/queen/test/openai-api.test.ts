import { type Queen, startQueen } from "@rbee/queen";
import {
  getJson,
  postJson,
  quietLog,
  STORIES_GREEDY_PREFIX,
  type StartedWorker,
  startLlmWorker,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The official `openai` npm client, unmodified, against the real queen routing to a real llm worker
// on stories260K. The worker is started by hand and heartbeats to the queen directly, which the
// queen accepts like a hive's report; spawning through hives is covered in cluster.test.ts.
describe("OpenAI API through the queen (official openai client)", () => {
  let queen: Queen;
  let worker: StartedWorker;
  let client: OpenAI;

  beforeAll(async () => {
    const dirs = tempRbeeDirs("openai");
    queen = await startQueen({ log: quietLog("queen"), port: 0, configDir: dirs.configDir, cacheDir: dirs.cacheDir });
    worker = await startLlmWorker(
      ["--heartbeat-url", queen.url, "--heartbeat-interval", "0.3", "--model-id", "stories"],
      {
        env: { RBEE_CLUSTER_TOKEN: queen.clusterToken },
      },
    );
    await waitFor(() => (queen.registry.routableWorkers("stories").length > 0 ? true : undefined));
    client = new OpenAI({ baseURL: `${queen.url}/v1`, apiKey: "unused-without-keys", maxRetries: 0 });
  });
  afterAll(async () => {
    await worker?.child.stop();
    await queen?.close();
  });

  it("lists the models that can be served", async () => {
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toContain("stories");
    expect((await client.models.retrieve("stories")).owned_by).toBe("rbee");
  });

  it("text completion, not streamed, with usage", async () => {
    const c = await client.completions.create({
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 20,
      temperature: 0,
    });
    expect(c.object).toBe("text_completion");
    expect(c.choices[0]?.text.startsWith(STORIES_GREEDY_PREFIX)).toBe(true);
    expect(c.choices[0]?.finish_reason).toBe("length");
    expect(c.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 20, total_tokens: 25 });
  });

  it("text completion streamed gives the same text", async () => {
    const plain = await client.completions.create({
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 30,
      temperature: 0,
    });
    const stream = await client.completions.create({
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 30,
      temperature: 0,
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    expect(text).toBe(plain.choices[0]?.text);
  });

  it("chat completion, not streamed and streamed with include_usage", async () => {
    const messages = [{ role: "user" as const, content: "Tell me a story about a dog." }];
    const plain = await client.chat.completions.create({
      model: "stories",
      messages,
      max_tokens: 24,
      temperature: 0,
      seed: 7,
    });
    expect(plain.object).toBe("chat.completion");
    expect(plain.choices[0]?.message.role).toBe("assistant");
    expect(plain.usage?.completion_tokens).toBeGreaterThan(0);
    const stream = await client.chat.completions.create({
      model: "stories",
      messages,
      max_tokens: 24,
      temperature: 0,
      seed: 7,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(plain.choices[0]?.message.content);
    expect(finish).toBe(plain.choices[0]?.finish_reason);
    expect(usage?.completion_tokens).toBe(plain.usage?.completion_tokens);
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
  });

  it("stop sequences and max_completion_tokens", async () => {
    const c = await client.chat.completions.create({
      model: "stories",
      messages: [{ role: "user", content: "Once" }],
      max_completion_tokens: 3,
    });
    expect(c.usage?.completion_tokens).toBeLessThanOrEqual(3);
    const s = await client.completions.create({
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 50,
      temperature: 0,
      stop: ["Lily"],
    });
    expect(s.choices[0]?.text).toBe(", there was a little girl named ");
    expect(s.choices[0]?.finish_reason).toBe("stop");
  });

  it("response_format with a JSON schema yields JSON that matches it", async () => {
    const c = await client.chat.completions.create({
      model: "stories",
      messages: [{ role: "user", content: "A cat:" }],
      max_tokens: 60,
      temperature: 0,
      response_format: {
        type: "json_schema",
        json_schema: {
          name: "cat",
          schema: {
            type: "object",
            properties: { happy: { type: "boolean" }, legs: { enum: [3, 4] } },
            required: ["happy", "legs"],
          },
        },
      },
    });
    const value = JSON.parse(c.choices[0]?.message.content ?? "");
    expect(typeof value.happy).toBe("boolean");
    expect([3, 4]).toContain(value.legs);
  });

  it("an unknown model is a 404 NotFoundError in OpenAI's shape", async () => {
    const err = await client.chat.completions
      .create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found");
  });

  it("bad parameters are 400 BadRequestError naming the parameter", async () => {
    const bad = (await client.chat.completions
      .create({ model: "stories", messages: [{ role: "user", content: "x" }], temperature: 7 })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    expect(bad.param).toBe("temperature");
    const top = (await client.chat.completions
      .create({ model: "stories", messages: [{ role: "user", content: "x" }], logprobs: true, top_logprobs: 50 })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(top).toBeInstanceOf(OpenAI.BadRequestError);
    expect(top.param).toBe("top_logprobs");
    const empty = await postJson(`${queen.url}/v1/chat/completions`, { model: "stories", messages: [] });
    expect(empty.status).toBe(400);
    expect(empty.body.error.type).toBe("invalid_request_error");
    const tooLong = (await client.completions
      .create({ model: "stories", prompt: "the cat sat. ".repeat(3000), max_tokens: 2 })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(tooLong.code).toBe("context_length_exceeded");
  });

  it("unknown fields are ignored; with X-Rbee-Strict: 1 they are a 400 naming them", async () => {
    const body = {
      model: "stories",
      messages: [{ role: "user", content: "Once" }],
      max_tokens: 2,
      reasoning_effort: "low",
      vendor_extension: { a: 1 },
    };
    const lenient = await postJson(`${queen.url}/v1/chat/completions`, body);
    expect(lenient.status).toBe(200);
    expect(lenient.body.object).toBe("chat.completion");
    const strict = await postJson(`${queen.url}/v1/chat/completions`, body, { headers: { "X-Rbee-Strict": "1" } });
    expect(strict.status).toBe(400);
    expect(strict.body.error.param).toBe("reasoning_effort");
    expect(strict.body.error.message).toContain("'vendor_extension'");
    // the official client's own extra fields go through too
    const viaClient = await client.chat.completions.create({
      model: "stories",
      messages: [{ role: "user", content: "Once" }],
      max_tokens: 2,
      parallel_tool_calls: true,
      store: false,
      prediction: { type: "content", content: "x" },
    });
    expect(viaClient.choices).toHaveLength(1);
  });

  it("what this model cannot do is a 400 that says so: suffix without FIM tokens, images", async () => {
    const fim = (await client.completions
      .create({ model: "stories", prompt: "def f(", suffix: "return x", max_tokens: 4 })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(fim).toBeInstanceOf(OpenAI.BadRequestError);
    expect(fim.param).toBe("suffix");
    expect(fim.message).toContain("FIM tokens");
    const image = (await client.chat.completions
      .create({
        model: "stories",
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "What is this?" },
              { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            ],
          },
        ],
      })
      .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.BadRequestError>;
    expect(image).toBeInstanceOf(OpenAI.BadRequestError);
    expect(image.param).toBe("messages[0].content[1]");
    expect(image.message).toContain("vision");
  });

  it("embeddings, as floats and as base64", async () => {
    const e = await client.embeddings.create({ model: "stories", input: ["a cat", "a dog"] });
    expect(e.data).toHaveLength(2);
    expect(e.data[0]?.embedding.length).toBeGreaterThan(0);
    const b = await postJson(`${queen.url}/v1/embeddings`, {
      model: "stories",
      input: "a cat",
      encoding_format: "base64",
    });
    expect(typeof b.body.data[0].embedding).toBe("string");
  });

  it("a client that disconnects mid-stream cancels the generation on the worker", async () => {
    const before = await getJson(`${worker.url}/metrics`, queen.clusterToken);
    const cancelledBefore = Number(
      /^rbee_worker_requests_total\{outcome="cancelled"\} (\d+)/m.exec(before.text)?.[1] ?? 0,
    );
    const abort = new AbortController();
    const stream = await client.completions.create(
      { model: "stories", prompt: "Once upon a time", max_tokens: 2000, temperature: 0, stream: true },
      { signal: abort.signal },
    );
    let n = 0;
    try {
      for await (const _ of stream) if (++n === 3) abort.abort();
    } catch {
      // the SDK raises on abort
    }
    await waitFor(async () => {
      const m = await getJson(`${worker.url}/metrics`, queen.clusterToken);
      const cancelled = Number(/^rbee_worker_requests_total\{outcome="cancelled"\} (\d+)/m.exec(m.text)?.[1] ?? 0);
      return cancelled > cancelledBefore ? true : undefined;
    });
  });
});
