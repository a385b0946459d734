import type { LoadContext, WorkerEngine } from "@rbee/worker-kit";
import { describe, expect, it } from "vitest";
import { startRuntime } from "./fixtures/runtime.js";

// An engine that tells its runtime it cannot serve any more (an adapter whose engine process died):
// the worker stops, and says why, so that runWorker exits non-zero and the hive restarts it.
describe("LoadContext.fail", () => {
  it("stops the worker with status Failed and keeps the error as its failure", async () => {
    let ctx: LoadContext | undefined;
    let disposed = 0;
    const engine: WorkerEngine = {
      workerType: "test",
      implementation: "test-engine",
      version: "1",
      capabilities: ["text-generation"],
      async load(c) {
        ctx = c;
        return { modelId: "m", slots: 1 };
      },
      async infer() {
        return { text: "", tokensGenerated: 0, promptTokens: 0, finishReason: "stop" };
      },
      async dispose() {
        disposed++;
      },
    };
    const runtime = await startRuntime(engine, { maxQueue: 1 });
    expect(runtime.status.status).toBe("Ready");
    const error = new Error("the engine stand-in was killed by SIGKILL while serving");
    ctx?.fail(error);
    ctx?.fail(new Error("a second report is ignored"));
    await runtime.done;
    expect(runtime.failure).toBe(error);
    expect(runtime.status.status).toBe("Failed");
    expect(disposed).toBe(1);
  });
});
