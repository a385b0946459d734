import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isPidAlive } from "@rbee/server-kit";
import { waitFor } from "@rbee/testing";
import { EngineEndpoint } from "@rbee/worker-kit";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";

// The engine behind an adapter, started on a free port (the stand-in engine of the adapter kit's
// tests, a small node program that answers /health) or attached to by URL.
const STAND_IN_ENGINE = join(fileURLToPath(new URL(".", import.meta.url)), "fixtures/adapter-kit/stand-in-engine.mjs");

const opened: EngineEndpoint[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((e) => e.close()));
});

const ctx = () => ({ signal: new AbortController().signal, log: pino({ level: "silent" }), fail: () => undefined });

describe("EngineEndpoint", () => {
  it("is not ready before it is opened: a 503 not_ready naming the engine", () => {
    const engine = new EngineEndpoint("stand-in");
    expect(() => engine.ready()).toThrow(expect.objectContaining({ statusCode: 503, code: "not_ready" }));
    expect(() => engine.ready()).toThrow("stand-in is not running");
    expect(engine.client).toBeUndefined();
  });

  it("attaches to a URL without starting anything, and leaves it alone when closed", async () => {
    const engine = new EngineEndpoint("stand-in");
    opened.push(engine);
    const client = await engine.open({ url: "http://127.0.0.1:1234//" }, ctx());
    expect(client.baseUrl).toBe("http://127.0.0.1:1234");
    expect(engine.ready()).toBe(client);
    engine.version = "1.2.3";
    expect(engine.facts()).toEqual({
      url: "http://127.0.0.1:1234",
      version: "1.2.3",
      mode: "attach",
      engine_pid: undefined,
    });
    await engine.close();
    expect(engine.closed).toBe(true);
    expect(engine.client).toBeUndefined();
    expect(() => engine.ready()).toThrow("stand-in is not running");
  });

  it("starts an engine on a free port, serves while it is ready, and stops it when closed", async () => {
    const engine = new EngineEndpoint("stand-in");
    opened.push(engine);
    const client = await engine.open(
      {
        start: {
          name: "stand-in",
          binary: process.execPath,
          args: (port) => [STAND_IN_ENGINE, "serve", String(port)],
          binaryHint: "build it",
          readyPath: "/health",
          startTimeoutMs: 20_000,
        },
        url: "http://127.0.0.1:1",
      },
      ctx(),
    );
    const pid = engine.process?.pid as number;
    expect(engine.facts()).toMatchObject({ mode: "start", engine_pid: pid });
    expect(engine.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(engine.ready()).toBe(client);
    expect(await client.json("/health")).toEqual({ status: "ok" });
    await engine.close();
    await engine.close(); // idempotent
    expect(engine.process?.state).toBe("stopped");
    await waitFor(() => (isPidAlive(pid) ? undefined : true), 10_000, "the engine's exit");
    expect(() => engine.ready()).toThrow("stand-in is not running");
  });
});
