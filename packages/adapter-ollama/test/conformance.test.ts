import { describeWorkerConformance, type OllamaApiFixture, type StartedWorker } from "@rbee/testing";
import { describe } from "vitest";
import { startAttached, startFixture } from "./helpers.js";

// The shared worker contract against the Ollama adapter attached to the Ollama API FIXTURE (a replay
// of Ollama's documented HTTP API; Ollama itself cannot be installed here).
let fixture: OllamaApiFixture | undefined;
let worker: StartedWorker | undefined;

describe("ollama adapter", () => {
  describeWorkerConformance("ollama adapter on the Ollama API fixture (not the real Ollama)", {
    start: async () => {
      fixture = await startFixture();
      worker = await startAttached(fixture);
      const w = worker;
      return { url: w.url, model: w.model, prompt: "Once upon a time", terminate: () => w.child.stop() };
    },
    stop: async () => {
      await worker?.child.stop();
      await fixture?.stop();
    },
  });
});
