import {
  describeWorkerConformance,
  requireLlamaServerOrSkip,
  type StartedWorker,
  startLlamaServerWorker,
} from "@rbee/testing";
import { describe } from "vitest";

// The shared worker contract against the adapter on the real llama-server (no fixture).
const LLAMA_SERVER = requireLlamaServerOrSkip();
let worker: StartedWorker | undefined;

describe.skipIf(LLAMA_SERVER === undefined)("llama-server adapter", () => {
  describeWorkerConformance("llama-server adapter on stories260K (the real llama-server)", {
    start: async () => {
      worker = await startLlamaServerWorker(LLAMA_SERVER as string, ["--parallel", "2", "--threads", "1"]);
      const w = worker;
      return { url: w.url, model: w.model, prompt: "Once upon a time", terminate: () => w.child.stop() };
    },
    stop: async () => {
      await worker?.child.stop();
    },
  });
});
