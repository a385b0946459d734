import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ErrorBody, InferResponse } from "@rbee/contract";
import { getJson, postJson, postSse, type StartedWorker, startLlamaServerWorker } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// What the real llama-server does not do on request: a malformed chunk, an error chunk mid-stream, a
// connection cut mid-stream. A stand-in that replays llama-server's protocol
// (fixtures/stand-in-llama-server.mjs) plays them; each ends its own request, never the worker.
const STAND_IN = join(fileURLToPath(new URL(".", import.meta.url)), "fixtures/stand-in-llama-server.mjs");

describe("llama-server adapter, on a stand-in llama-server that misbehaves", () => {
  let w: StartedWorker;
  const url = (path: string) => new URL(path, w.url).toString();
  beforeAll(async () => {
    w = await startLlamaServerWorker(STAND_IN, ["--threads", "1", "--parallel", "1"]);
  });
  afterAll(async () => {
    await w?.child.stop();
  });

  const cases = [
    ["a chunk that is not JSON", "bad-json", /llama-server sent a stream chunk that is not JSON: \{oops/],
    ["an error chunk mid-stream", "error-chunk", /stand-in decode failure/],
    ["a connection cut mid-stream", "cut", /the stream from llama-server broke/],
  ] as const;

  for (const [what, prompt, message] of cases) {
    it(`${what}: a streamed request ends with its text so far and one error event`, async () => {
      const r = await postSse(url("/v1/infer"), { prompt, stream: true });
      expect(r.status).toBe(200);
      expect(r.events.filter((e) => e.event === "token").map((e) => e.data.text)).toEqual([" once"]);
      expect(r.events.at(-1)?.event).toBe("error");
      expect(r.events.at(-1)?.data.message).toMatch(message);
    });

    it(`${what}: a plain request answers 502 in the error shape`, async () => {
      const r = await postJson(url("/v1/infer"), { prompt });
      expect(r.status, r.text).toBe(502);
      expect(ErrorBody.parse(r.body).error.message).toMatch(message);
    });
  }

  it("the worker serves on: the next request is answered, /health is 200", async () => {
    const r = await postJson(url("/v1/infer"), { prompt: "fine" });
    expect(r.status, r.text).toBe(200);
    expect(InferResponse.parse(r.body)).toMatchObject({
      text: " once more",
      tokens_generated: 2,
      finish_reason: "stop",
    });
    expect((await getJson(url("/health"))).status).toBe(200);
    expect((await getJson(url("/info"))).body.version).toBe("b0-standin");
  });
});

describe("llama-server adapter, when llama-server's port is taken before it binds it", () => {
  it("starts llama-server again on another port", async () => {
    const dir = mkdtempSync(join(tmpdir(), "rbee-port-taken-"));
    const w = await startLlamaServerWorker(STAND_IN, ["--threads", "1"], {
      env: { STAND_IN_BIND_FAILS_ONCE: join(dir, "failed-once") },
    });
    try {
      expect(w.child.stdout).toMatch(/"msg":"llama-server's port was taken before it bound it; trying another"/);
      expect((await postJson(new URL("/v1/infer", w.url).toString(), { prompt: "fine" })).status).toBe(200);
    } finally {
      await w.child.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
