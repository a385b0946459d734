import {
  type EngineFlavor,
  type OpenAiEngineFixture,
  postJson,
  postSse,
  type StartedWorker,
  waitFor,
} from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIXTURE_MODEL, startAttached, startFixture, startHeartbeatSink } from "./helpers.js";

// What the vLLM and TensorRT-LLM adapters send their engine and what they make of the replies,
// checked on the vLLM / TensorRT-LLM API FIXTURE (which records every request body, and reports
// stats as each engine does: vLLM's Prometheus /metrics, trtllm-serve's iteration stats).
describe.each([["vllm"], ["trtllm"]] as [EngineFlavor][])(
  "%s adapter on its API fixture: requests and heartbeat",
  (flavor) => {
    let fixture: OpenAiEngineFixture;
    let worker: StartedWorker;
    let sink: Awaited<ReturnType<typeof startHeartbeatSink>>;
    const last = (path: string) => fixture.requests.filter((r) => r.path === path).at(-1)?.body ?? {};

    beforeAll(async () => {
      sink = await startHeartbeatSink();
      fixture = await startFixture(flavor, { chunkDelayMs: 0 });
      worker = await startAttached(fixture, ["--heartbeat-url", sink.url, "--heartbeat-interval", "0.2"]);
    }, 60_000);
    afterAll(async () => {
      await worker?.child.stop();
      await fixture?.stop();
      await sink?.stop();
    });

    it("a prompt goes to /v1/completions, streamed with usage, sampling and stop passed on", async () => {
      const r = await postJson(`${worker.url}/v1/infer`, {
        prompt: "Once upon a time",
        max_tokens: 5,
        temperature: 0.5,
        top_k: 7,
        top_p: 0.9,
        min_p: 0.1,
        seed: 42,
        stop: "Max",
      });
      expect(r.status, r.text).toBe(200);
      expect(r.body).toMatchObject({
        text: ", there was a little",
        tokens_generated: 5,
        prompt_tokens: 4,
        finish_reason: "length",
      });
      expect(last("/v1/completions")).toEqual({
        model: FIXTURE_MODEL,
        prompt: "Once upon a time",
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: 5,
        temperature: 0.5,
        top_k: 7,
        top_p: 0.9,
        min_p: 0.1,
        seed: 42,
        stop: ["Max"],
        repetition_penalty: 1,
      });
    });

    it("messages go to /v1/chat/completions; the reply is the deltas' content", async () => {
      const r = await postSse(`${worker.url}/v1/infer`, {
        messages: [{ role: "user", content: "Tell me a story." }],
        max_tokens: 4,
        stream: true,
      });
      const done = r.events.at(-1);
      expect(done?.event).toBe("done");
      expect(done?.data).toMatchObject({ text: "Once upon a time,", tokens_generated: 4, finish_reason: "length" });
      expect(last("/v1/chat/completions")).toMatchObject({
        model: FIXTURE_MODEL,
        messages: [{ role: "user", content: "Tell me a story." }],
        stream: true,
      });
    });

    it("a stop string ends the text before it, with finish_reason stop", async () => {
      const r = await postJson(`${worker.url}/v1/infer`, {
        prompt: "Once upon a time",
        max_tokens: 20,
        stop: [" named"],
      });
      expect(r.status, r.text).toBe(200);
      expect(r.body).toMatchObject({ text: ", there was a little girl", finish_reason: "stop" });
    });

    it("the heartbeat carries the engine's batch, queue, KV-cache usage and tokens/s while it generates", async () => {
      fixture.requests.length = 0;
      const slow = await startFixture(flavor, { chunkDelayMs: 40 });
      const w = await startAttached(slow, [
        "--heartbeat-url",
        sink.url,
        "--heartbeat-interval",
        "0.2",
        "--worker-id",
        `hb-${flavor}`,
      ]);
      try {
        const streams = [1, 2].map(() => postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 60 }));
        const busy = await waitFor(
          () =>
            sink.heartbeats.find(
              (h) =>
                h.worker_id === `hb-${flavor}` &&
                (h.batch_size as number) >= 1 &&
                (h.kv_cache_usage as number) > 0 &&
                (h.throughput_tokens_per_second as number) > 0,
            ),
          20_000,
          "a heartbeat with the engine's batch, KV-cache usage and tokens/s",
        );
        expect(busy).toMatchObject({ loaded_models: [FIXTURE_MODEL], worker_type: flavor, implementation: flavor });
        for (const s of await Promise.all(streams)) expect(s.status, s.text).toBe(200);
        // idle again: nothing running in the engine
        await waitFor(
          () => sink.heartbeats.filter((h) => h.worker_id === `hb-${flavor}`).at(-1)?.batch_size === 0 || undefined,
          20_000,
          "a heartbeat with batch_size 0 once idle",
        );
      } finally {
        await w.child.stop();
        await slow.stop();
      }
    });
  },
);
