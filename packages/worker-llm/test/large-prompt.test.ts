import { getJson, postJson, type StartedWorker, startLlmWorker } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Issue 15, defect 3: a 15 MB prompt froze a worker's /health for 18.7 s (it was tokenized in one
 * go, only to be refused with context_length_exceeded). A prompt that cannot fit is refused before
 * it is tokenized, a large one is tokenized in chunks, and /health answers meanwhile.
 */

/** Asks /health while `during` runs, and resolves how long the slowest answer took (ms). */
async function slowestHealth(url: string, during: Promise<unknown>): Promise<number> {
  let done = false;
  void during.finally(() => {
    done = true;
  });
  let slowest = 0;
  while (!done) {
    const t0 = performance.now();
    const r = await getJson(`${url}/health`);
    expect(r.status).toBe(200);
    slowest = Math.max(slowest, performance.now() - t0);
    await new Promise((r) => setTimeout(r, 20));
  }
  return slowest;
}

describe("large prompts do not block the llm worker (issue 15: defect 3)", () => {
  let small: StartedWorker;
  let wide: StartedWorker;

  beforeAll(async () => {
    // the default context (2,048 tokens), and a wide one (65,536) for which a 600 KB prompt passes
    // the bound by bytes and is counted in chunks
    [small, wide] = await Promise.all([
      startLlmWorker(["--parallel", "1"]),
      startLlmWorker(["--ctx-size", "65536", "--parallel", "1"]),
    ]);
  });
  afterAll(async () => {
    await small?.child.stop(5000);
    await wide?.child.stop(5000);
  });

  it("a 15 MB prompt is refused by its size alone; /health keeps answering", async () => {
    const prompt = "Once upon a time ".repeat(900_000); // 15.3 MB, some 3.6 million tokens
    const t0 = performance.now();
    const reply = postJson(`${small.url}/v1/infer`, { prompt, max_tokens: 4 });
    const slowest = await slowestHealth(small.url, reply);
    const r = await reply;
    expect(r.status, r.text.slice(0, 300)).toBe(400);
    expect(r.body.error.code).toBe("context_length_exceeded");
    expect(r.body.error.message).toMatch(/^the prompt is at least \d+ tokens but the context holds 2048/);
    // generous bounds for a shared machine: tokenizing it in one go took about 20 s here
    expect(slowest).toBeLessThan(5_000);
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it("a chat with a 15 MB message is refused the same way", async () => {
    const content = "Lily had a dog. ".repeat(950_000);
    const r = await postJson(`${small.url}/v1/infer`, { messages: [{ role: "user", content }], max_tokens: 4 });
    expect(r.status, r.text.slice(0, 300)).toBe(400);
    expect(r.body.error.message).toMatch(/^the prompt is at least \d+ tokens/);
  });

  it("a 600 KB prompt that may fit by its size is counted in chunks; /health answers meanwhile", async () => {
    const prompt = "Once upon a time ".repeat(36_000); // 612 KB, about 144,000 tokens > 65,536
    const reply = postJson(`${wide.url}/v1/infer`, { prompt, max_tokens: 4 });
    const slowest = await slowestHealth(wide.url, reply);
    const r = await reply;
    expect(r.status, r.text.slice(0, 300)).toBe(400);
    expect(r.body.error.message).toMatch(/^the prompt is at least \d+ tokens but the context holds 65536/);
    expect(slowest).toBeLessThan(5_000);
  });

  it("prompts that fit are still answered", async () => {
    const r = await postJson(`${small.url}/v1/infer`, {
      prompt: `${"Lily went to the park. ".repeat(200)}Once upon a time`,
      max_tokens: 4,
      temperature: 0,
    });
    expect(r.status, r.text.slice(0, 300)).toBe(200);
    expect(r.body.prompt_tokens).toBeGreaterThan(1000);
  });
});
