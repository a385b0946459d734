import { freePort } from "@rbee/server-kit";
import type { WorkerEngine, WorkerRuntime } from "@rbee/worker-kit";
import { afterEach, describe, expect, it } from "vitest";
import { startRuntime } from "./fixtures/runtime.js";

// GET /health?wait_ms=N: a starting worker holds the answer until it is ready (or fails), so that
// its hive hears of readiness when it happens instead of at its next poll. Without wait_ms, or for
// a worker that is not starting, it answers at once, as before.

/** The runtimes started by a test, shut down after it. */
const runtimes: Promise<WorkerRuntime>[] = [];

/** An engine whose load waits until the test says how it ends. */
function gatedEngine() {
  let settle: (ok: boolean) => void = () => {};
  const gate = new Promise<boolean>((resolve) => {
    settle = resolve;
  });
  const engine: WorkerEngine = {
    workerType: "test",
    implementation: "test-engine",
    version: "1",
    capabilities: ["text-generation"],
    async load() {
      if (!(await gate)) throw new Error("the model file is broken");
      return { modelId: "m", slots: 1 };
    },
    async infer() {
      return { text: "ok", tokensGenerated: 1, promptTokens: 1, finishReason: "stop" };
    },
    async dispose() {},
  };
  return { engine, load: () => settle(true), fail: () => settle(false) };
}

async function health(url: string): Promise<{ status: number; body: { status: string }; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as { status: string }, ms: performance.now() - t0 };
}

/** Starts a runtime whose load is gated; resolves once it listens (its start goes on in the background). */
async function starting(gated: ReturnType<typeof gatedEngine>) {
  const port = await freePort();
  const started = startRuntime(gated.engine, { port });
  runtimes.push(started);
  started.catch(() => {});
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      await fetch(`${base}/health`);
      return { base, started };
    } catch {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  throw new Error("the runtime never listened");
}

afterEach(async () => {
  for (const started of runtimes.splice(0)) await (await started.catch(() => undefined))?.shutdown("test over");
});

describe("GET /health?wait_ms", () => {
  it("holds a starting worker's answer until it is ready, then answers 200", async () => {
    const gated = gatedEngine();
    const { base, started } = await starting(gated);
    expect((await health(`${base}/health`)).status).toBe(503); // no wait_ms: at once, as before
    const held = health(`${base}/health?wait_ms=4000`);
    await new Promise((r) => setTimeout(r, 300));
    gated.load();
    const answer = await held;
    await started;
    expect(answer.status).toBe(200);
    expect(answer.body.status).toBe("Ready");
    expect(answer.ms).toBeGreaterThanOrEqual(250); // it waited for the load...
    expect(answer.ms).toBeLessThan(3000); // ...and not for the whole wait
  });

  it("answers 503 Failed as soon as the load fails", async () => {
    const gated = gatedEngine();
    const { base, started } = await starting(gated);
    const held = health(`${base}/health?wait_ms=4000`);
    await new Promise((r) => setTimeout(r, 200));
    gated.fail();
    const answer = await held;
    await expect(started).rejects.toThrow(/broken/);
    expect(answer.status).toBe(503);
    expect(answer.body.status).toBe("Failed");
    expect(answer.ms).toBeLessThan(3000);
  });

  it("answers 503 after wait_ms when the worker is still starting; a wait_ms that is no number is no wait", async () => {
    const gated = gatedEngine();
    const { base, started } = await starting(gated);
    const waited = await health(`${base}/health?wait_ms=300`);
    expect(waited.status).toBe(503);
    expect(waited.body.status).toBe("Starting");
    expect(waited.ms).toBeGreaterThanOrEqual(250);
    const bad = await health(`${base}/health?wait_ms=soon`);
    expect(bad.status).toBe(503);
    expect(bad.ms).toBeLessThan(250);
    gated.load();
    await started;
  });
});
