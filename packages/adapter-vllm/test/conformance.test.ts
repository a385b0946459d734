import { describeWorkerConformance, type OpenAiEngineFixture, type StartedWorker } from "@rbee/testing";
import { describe } from "vitest";
import { startAttached, startFixture } from "./helpers.js";

// The shared worker contract against the vLLM adapter attached to the vLLM API FIXTURE (a replay of
// vLLM's OpenAI-compatible server, built from vLLM's source; vLLM itself cannot be installed here).
let fixture: OpenAiEngineFixture | undefined;
let worker: StartedWorker | undefined;

describe("vllm adapter", () => {
  describeWorkerConformance("vllm adapter on the vLLM API fixture (not the real vLLM)", {
    start: async () => {
      fixture = await startFixture("vllm");
      worker = await startAttached(fixture);
      const w = worker;
      return { url: w.url, model: w.model, prompt: "Once upon a time", terminate: () => w.child.stop() };
    },
    stop: async () => {
      await worker?.child.stop();
      await fixture?.stop();
    },
    skip: {
      embeddings: "the vllm type does not declare embeddings (a vLLM serves them only for a pooling model)",
    },
  });
});
