import { request } from "node:http";
import type { WorkerEngine, WorkerRuntime } from "@rbee/worker-kit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRuntime } from "./fixtures/runtime.js";

// A worker answers `102 Processing` to a request it has not answered within 50 ms, so that the
// queen knows it is alive and has the request; a quicker answer is its own first byte.

/** How long the engine stand-in takes for a prompt "wait <ms>"; any other prompt is answered at once. */
function waitOf(prompt: string | undefined): number {
  const m = /^wait (\d+)$/.exec(prompt ?? "");
  return m ? Number(m[1]) : 0;
}

const engine: WorkerEngine = {
  workerType: "test",
  implementation: "test-engine",
  version: "1",
  capabilities: ["text-generation"],
  async load() {
    return { modelId: "m", slots: 4 };
  },
  async infer(req, { emit, signal }) {
    const ms = waitOf(req.prompt);
    if (ms > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        signal.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    await emit("done", 1);
    return { text: "done", tokensGenerated: 1, promptTokens: 1, finishReason: "stop" };
  },
  async dispose() {},
};

let runtime: WorkerRuntime;

beforeAll(async () => {
  runtime = await startRuntime(engine);
});
afterAll(() => runtime.shutdown("the test is over"));

interface Answer {
  status: number;
  /** The status codes of the interim (1xx) responses, in order. */
  interim: number[];
  body: string;
}

/** POSTs to the worker with a plain http.request, recording the interim responses it hears. */
function post(path: string, body: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const interim: number[] = [];
    const req = request(`${runtime.url}${path}`, { method: "POST", headers: { "content-type": "application/json" } });
    req.on("information", (info) => interim.push(info.statusCode));
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, interim, body: text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

describe("102 Processing", () => {
  it("is sent once to a request not answered within 50 ms", async () => {
    const a = await post("/v1/infer", { prompt: "wait 300", max_tokens: 4 });
    expect(a.status).toBe(200);
    expect(a.interim).toEqual([102]);
    expect(JSON.parse(a.body)).toMatchObject({ text: "done", finish_reason: "stop" });
  });

  it("is sent to a stream whose first event comes after 50 ms", async () => {
    const a = await post("/v1/infer", { prompt: "wait 300", max_tokens: 4, stream: true });
    expect(a.status).toBe(200);
    expect(a.interim).toEqual([102]);
    expect(a.body).toContain("event: done");
  });

  it("is not sent to a request answered at once", async () => {
    await post("/v1/infer", { prompt: "warm up", max_tokens: 4 });
    const a = await post("/v1/infer", { prompt: "at once", max_tokens: 4 });
    expect(a.status).toBe(200);
    expect(a.interim).toEqual([]);
    expect(JSON.parse(a.body)).toMatchObject({ text: "done" });
  });

  it("is not sent to a request refused before it is admitted", async () => {
    const a = await post("/v1/infer", { prompt: "wait 300", model: "another-model" });
    expect(a.status).toBe(404);
    expect(a.interim).toEqual([]);
  });
});
