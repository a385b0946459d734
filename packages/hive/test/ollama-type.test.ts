import { HiveWorkerTypes } from "@rbee/contract";
import { OllamaApiFixture, postJson } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHive, type TestHive } from "./helpers/test-hive.js";

// The ollama worker type through a hive, attached to the Ollama API FIXTURE (not the real Ollama):
// Available with no ollama binary on the machine (attach mode needs none), spawned like any worker.
let fixture: OllamaApiFixture;
let t: TestHive;
beforeAll(async () => {
  fixture = new OllamaApiFixture();
  await fixture.start();
  // workers inherit the hive process's environment (this test file runs in a process of its own)
  process.env.RBEE_OLLAMA_URL = fixture.url;
  t = await startTestHive({ env: { RBEE_OLLAMA_URL: fixture.url, PATH: "" } });
});
afterAll(async () => {
  await t?.close();
  await fixture?.stop();
  delete process.env.RBEE_OLLAMA_URL;
});

describe("hive: the ollama type (on the Ollama API fixture)", () => {
  it("is Available on every device kind with no ollama binary: it attaches to the Ollama of RBEE_OLLAMA_URL", async () => {
    const types = HiveWorkerTypes.parse((await t.api.get("/v1/worker-types?refresh=1")).body).worker_types;
    const ollama = types.find((w) => w.id === "ollama");
    expect(ollama).toMatchObject({ status: "Available", artifact: "none", engines: [] });
    expect(ollama?.runs_on).toEqual(["cpu", "cuda", "metal", "vulkan", "rocm"]);
  });

  it("a spawn serves the Ollama model name through the Ollama it attached to", async () => {
    const r = await t.api.post("/v1/workers", { worker_type: "ollama", model: "fixture-llama", worker_id: "ollama-1" });
    expect(r.status, r.text).toBe(201);
    expect(r.body).toMatchObject({ worker_type: "ollama", model: "fixture-llama" });
    const reply = await postJson(
      `${r.body.url}/v1/infer`,
      { prompt: "Once upon a time", max_tokens: 3, model: "fixture-llama" },
      { token: t.hive.token },
    );
    expect(reply.status, reply.text).toBe(200);
    expect(reply.body.text).toBe(", there was");
    expect(fixture.requests.some((q) => q.path === "/api/pull")).toBe(true);
    expect((await t.api.delete("/v1/workers/ollama-1")).status).toBe(200);
  });

  it("an Ollama name with a tag and a namespace is served as given; the worker id it gets names no file with ':' or '/'", async () => {
    const r = await t.api.post("/v1/workers", { worker_type: "ollama", model: "fixture-llama:latest" });
    expect(r.status, r.text).toBe(201);
    expect(r.body.model).toBe("fixture-llama:latest");
    expect(r.body.worker_id).toMatch(/^ollama-fixture-llama-latest-[0-9a-f]{4}$/);
    const reply = await postJson(
      `${r.body.url}/v1/infer`,
      { prompt: "Once upon a time", max_tokens: 2, model: "fixture-llama:latest" },
      { token: t.hive.token },
    );
    expect(reply.status, reply.text).toBe(200);
    expect((await t.api.delete(`/v1/workers/${r.body.worker_id}`)).status).toBe(200);
    // a name that could climb out of a directory is refused, whatever the type does with it
    const bad = await t.api.post("/v1/workers", { worker_type: "ollama", model: "a/../../b" });
    expect(bad.status, bad.text).toBe(400);
    expect(bad.body.error.param).toBe("model");
  });
});
