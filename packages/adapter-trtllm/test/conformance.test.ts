import { describeWorkerConformance, OpenAiEngineFixture, type StartedWorker, startWorker } from "@rbee/testing";
import { describe } from "vitest";

// The shared worker contract against the TensorRT-LLM adapter attached to the TensorRT-LLM API
// FIXTURE (a replay of trtllm-serve's OpenAI-compatible server, built from TensorRT-LLM's source;
// TensorRT-LLM itself cannot be installed here: it needs an NVIDIA GPU).
let fixture: OpenAiEngineFixture | undefined;
let worker: StartedWorker | undefined;

describe("trtllm adapter", () => {
  describeWorkerConformance("trtllm adapter on the TensorRT-LLM API fixture (not the real trtllm-serve)", {
    start: async () => {
      fixture = new OpenAiEngineFixture({ flavor: "trtllm" });
      await fixture.start();
      worker = await startWorker("trtllm", ["--trtllm-url", fixture.url, "--parallel", "2"], {
        model: "fixture-model",
      });
      const w = worker;
      return { url: w.url, model: w.model, prompt: "Once upon a time", terminate: () => w.child.stop() };
    },
    stop: async () => {
      await worker?.child.stop();
      await fixture?.stop();
    },
    skip: {
      embeddings: "the trtllm type does not declare embeddings (trtllm-serve has no /v1/embeddings)",
      json_schema:
        "the trtllm type does not declare json_schema (trtllm-serve constrains output only when started with a guided-decoding backend)",
    },
  });
});
