import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OpenAiEngineFixture, postJson, postSse, startWorker, waitFor } from "@rbee/testing";
import { afterEach, describe, expect, it } from "vitest";
import { startAttached, startFixture } from "./helpers.js";

// vLLM's failures, as the vLLM API FIXTURE replays them (bodies from vLLM's source), through the
// adapter: each a clear rbee error with vLLM's own words, and a worker that goes on serving.
const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(stops.splice(0).map((s) => s()));
});

async function attached(o: ConstructorParameters<typeof OpenAiEngineFixture>[0] = { flavor: "vllm" }, model?: string) {
  const fixture = await startFixture(o.flavor, o);
  stops.push(() => fixture.stop());
  const w = await startAttached(fixture, [], model);
  stops.push(() => w.child.stop());
  return { fixture, w };
}

describe("vllm adapter on the vLLM API fixture: errors", () => {
  it("a model the vLLM does not serve fails the load, naming the ones it serves", async () => {
    const fixture = await startFixture("vllm");
    stops.push(() => fixture.stop());
    await expect(startAttached(fixture, [], "meta-llama/Llama-3.1-8B")).rejects.toThrow(
      /model 'meta-llama\/Llama-3\.1-8B' was not found: vllm at http:\/\/127\.0\.0\.1:\d+ serves 'fixture-model'/,
    );
  });

  it("attached to a vLLM, given a hive's repo directory, it finds the repo id vLLM serves (its metadata.json)", async () => {
    const fixture = await startFixture("vllm", { models: ["Qwen/Qwen2.5-0.5B-Instruct"] });
    stops.push(() => fixture.stop());
    const dir = join(mkdtempSync(join(tmpdir(), "rbee-vllm-repo-")), "qwen--qwen2.5-0.5b-instruct");
    mkdirSync(dir);
    writeFileSync(join(dir, "metadata.json"), JSON.stringify({ artifact: { name: "Qwen/Qwen2.5-0.5B-Instruct" } }));
    const w = await startAttached(fixture, [], dir);
    stops.push(() => w.child.stop());
    expect(w.model).toBe("qwen--qwen2.5-0.5b-instruct");
    const r = await postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 2 });
    expect(r.status, r.text).toBe(200);
    expect(fixture.requests.at(-1)?.body?.model).toBe("Qwen/Qwen2.5-0.5B-Instruct");
  });

  it.each([[false], [true]])(
    "vLLM's 404 for a model it stopped serving is 404 model_not_found with its words (pre-0.10 body: %s)",
    async (legacyErrors) => {
      const { fixture, w } = await attached({ flavor: "vllm", legacyErrors });
      fixture.setModels(["another-model"]);
      const r = await postJson(`${w.url}/v1/infer`, { prompt: "Once", max_tokens: 2 });
      expect(r.status, r.text).toBe(404);
      expect(r.body.error.code).toBe("model_not_found");
      expect(r.body.error.message).toContain("vllm says: The model `fixture-model` does not exist.");
    },
  );

  it("vLLM's validation error (400) is a 400 with its words", async () => {
    const { w } = await attached({ flavor: "vllm", maxModelLen: 64 });
    const r = await postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 100 });
    expect(r.status, r.text).toBe(400);
    expect(r.body.error.code).toBe("invalid_request");
    expect(r.body.error.message).toMatch(
      /vllm refused the request: This model's maximum context length is 64 tokens\. However, you requested 104 tokens/,
    );
    const ok = await postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 3 });
    expect(ok.status, ok.text).toBe(200);
  });

  it("an error chunk in the middle of a stream ends that request with an error event; the worker goes on", async () => {
    const { w } = await attached();
    const r = await postSse(`${w.url}/v1/infer`, { prompt: "MID-STREAM-ERROR please", max_tokens: 10, stream: true });
    const terminal = r.events.filter((e) => e.event === "done" || e.event === "error");
    expect(terminal).toHaveLength(1);
    expect(terminal[0]?.event).toBe("error");
    expect(JSON.stringify(terminal[0]?.data)).toContain("FIXTURE: MID-STREAM-ERROR");
    expect(r.events.filter((e) => e.event === "token").length).toBe(2);
    const ok = await postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 3 });
    expect(ok.status, ok.text).toBe(200);
  });

  it("a stream chunk in an unexpected shape ends that request with an error quoting it; the client that leaves closes vLLM's stream", async () => {
    const { fixture, w } = await attached({ flavor: "vllm", chunkDelayMs: 20 });
    const r = await postSse(`${w.url}/v1/infer`, { prompt: "BAD-CHUNK please", max_tokens: 10, stream: true });
    expect(r.events.at(-1)?.event).toBe("error");
    expect(r.events.at(-1)?.data).toMatchObject({ code: "bad_gateway" });
    expect(JSON.stringify(r.events.at(-1)?.data)).toContain("cannot read: <html>502 Bad Gateway</html>");
    const left = await postSse(
      `${w.url}/v1/infer`,
      { prompt: "Once upon a time", max_tokens: 100, stream: true },
      { onEvent: (e) => (e.event === "token" ? "stop" : undefined) },
    );
    expect(left.disconnected).toBe(true);
    await waitFor(
      () => fixture.cancelled.find((c) => c.path === "/v1/completions"),
      10_000,
      "vLLM's stream closed early",
    );
  });

  it("a connection that closes mid-stream (vLLM died) ends the stream with an error, never a hang", async () => {
    const { w } = await attached();
    const r = await postSse(`${w.url}/v1/infer`, { prompt: "CUT-STREAM now", max_tokens: 20, stream: true });
    const last = r.events.at(-1);
    expect(last?.event).toBe("error");
    expect(last?.data).toMatchObject({ code: "engine_stream_broken" });
    const plain = await postJson(`${w.url}/v1/infer`, { prompt: "CUT-STREAM again", max_tokens: 20 });
    expect(plain.status).toBe(502);
    expect(plain.body.error.code).toBe("engine_stream_broken");
    const ok = await postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 3 });
    expect(ok.status, ok.text).toBe(200);
  });

  it("no vLLM at the URL fails the load saying what to do", async () => {
    const gone = new OpenAiEngineFixture({ flavor: "vllm" });
    const url = await gone.start();
    await gone.stop();
    await expect(startWorker("vllm", ["--vllm-url", url], { model: "fixture-model" })).rejects.toThrow(
      /no vllm answers at http:\/\/127\.0\.0\.1:\d+: .*pip install vllm/,
    );
  });

  it("a vLLM too old fails the load with its version and the one needed", async () => {
    const fixture = await startFixture("vllm", { version: "0.4.2" });
    stops.push(() => fixture.stop());
    await expect(startAttached(fixture)).rejects.toThrow(
      /vllm at http:\/\/127\.0\.0\.1:\d+ reports version '0\.4\.2'; this adapter needs vllm 0\.6\.0 or newer/,
    );
  });

  it("a server that is not vLLM (an unexpected /version) fails the load with what it answered", async () => {
    const other = createServer((req, res) => {
      res.writeHead(req.url === "/version" ? 200 : 404, { "content-type": "application/json" });
      res.end(JSON.stringify(req.url === "/version" ? { build: "b1234" } : { error: "not found" }));
    });
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    stops.push(() => new Promise<void>((r) => other.close(() => r())));
    const url = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    await expect(startWorker("vllm", ["--vllm-url", url], { model: "fixture-model" })).rejects.toThrow(
      /does not answer \/version as vllm does \(\{"build":"b1234"\}\)/,
    );
  });
});
