import { type ComfyUiFixture, describeWorkerConformance, type StartedWorker } from "@rbee/testing";
import { describe } from "vitest";
import { startAttached, startFixture } from "./helpers.js";

// The shared worker contract against the ComfyUI adapter attached to the ComfyUI API FIXTURE (a replay
// of ComfyUI's HTTP and websocket protocol from its server.py and execution.py; ComfyUI itself cannot
// be installed here). The adapter lists image-generation and workflow, not text-generation: the
// suite runs its image checks and skips the text ones.
let fixture: ComfyUiFixture | undefined;
let worker: StartedWorker | undefined;

describe("comfyui adapter", () => {
  describeWorkerConformance("comfyui adapter on the ComfyUI API fixture (not the real ComfyUI)", {
    start: async () => {
      fixture = await startFixture();
      worker = await startAttached(fixture);
      const w = worker;
      return { url: w.url, model: w.model, prompt: "a bee on a sunflower", terminate: () => w.child.stop() };
    },
    stop: async () => {
      await worker?.child.stop();
      await fixture?.stop();
    },
  });
});
