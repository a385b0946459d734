import {
  completionBody,
  deviceLaunch,
  llamaServerArgs,
  readChunk,
  resolveLlamaServer,
  toRbeeError,
} from "@rbee/adapter-llama-server";
import { RbeeError } from "@rbee/contract";
import { EngineHttpError, parsePrometheusText, readEngineError } from "@rbee/worker-kit";
import { describe, expect, it } from "vitest";

// How the adapter speaks llama-server's language: pure translations, no process.
describe("InferRequest → llama-server /completion", () => {
  it("always streams, keeps the prompt cache, and says 'no repeat penalty' unless asked", () => {
    expect(completionBody({ prompt: "x" }, "x")).toEqual({
      prompt: "x",
      stream: true,
      cache_prompt: true,
      n_predict: -1,
      repeat_penalty: 1,
    });
  });

  it("passes every sampling field under llama-server's name; one stop string becomes a list", () => {
    const body = completionBody(
      {
        prompt: "x",
        max_tokens: 7,
        temperature: 0,
        top_k: 5,
        top_p: 0.5,
        min_p: 0.1,
        repeat_penalty: 1.2,
        presence_penalty: 0.3,
        frequency_penalty: -0.3,
        seed: 42,
        stop: "\n",
        stream: false,
        json_schema: { type: "object" },
      },
      "formatted",
    );
    expect(body).toEqual({
      prompt: "formatted",
      stream: true,
      cache_prompt: true,
      n_predict: 7,
      temperature: 0,
      top_k: 5,
      top_p: 0.5,
      min_p: 0.1,
      repeat_penalty: 1.2,
      presence_penalty: 0.3,
      frequency_penalty: -0.3,
      seed: 42,
      stop: ["\n"],
      json_schema: { type: "object" },
    });
  });
});

describe("llama-server's stream chunks are read at the boundary", () => {
  it("a partial and a final chunk", () => {
    expect(readChunk('{"content":" the","stop":false,"tokens_predicted":2,"tokens_evaluated":5}')).toMatchObject({
      content: " the",
      tokens_predicted: 2,
    });
    const final = readChunk('{"content":"","stop":true,"stop_type":"limit","timings":{"cache_n":4},"extra":1}');
    expect(final.stop_type).toBe("limit");
    expect(final.timings?.cache_n).toBe(4);
  });

  it("a chunk that is not JSON, or of the wrong shape, is a 502 RbeeError, not a crash", () => {
    const notJson = (() => {
      try {
        readChunk("{oops");
      } catch (err) {
        return err;
      }
    })() as RbeeError;
    expect(notJson).toBeInstanceOf(RbeeError);
    expect(notJson.statusCode).toBe(502);
    expect(notJson.message).toMatch(/not JSON: \{oops/);
    expect(() => readChunk('{"content": 5}')).toThrow(RbeeError);
  });

  it("a mid-stream error chunk becomes the RbeeError its status says", () => {
    try {
      readChunk('{"error":{"code":500,"message":"decode failed","type":"server_error"}}');
      expect.unreachable();
    } catch (err) {
      expect((err as RbeeError).statusCode).toBe(502);
      expect((err as RbeeError).message).toContain("decode failed");
    }
  });
});

describe("llama-server's error replies become rbee errors", () => {
  const fromReply = (status: number, body: unknown) =>
    toRbeeError(new EngineHttpError(readEngineError(status, JSON.stringify(body)), "/completion")) as RbeeError;

  it("a prompt longer than the context: 400 context_length_exceeded with the numbers", () => {
    const e = fromReply(400, {
      error: {
        code: 400,
        message: "request (1802 tokens) exceeds...",
        type: "exceed_context_size_error",
        n_prompt_tokens: 1802,
        n_ctx: 512,
      },
    });
    expect(e.statusCode).toBe(400);
    expect(e.code).toBe("context_length_exceeded");
    expect(e.details).toEqual({ prompt_tokens: 1802, context_size: 512 });
  });

  it("a bad json_schema: 400 naming json_schema", () => {
    const e = fromReply(400, {
      error: { code: 400, message: "JSON schema conversion failed", type: "invalid_request_error" },
    });
    expect(e.statusCode).toBe(400);
    expect(e.param).toBe("json_schema");
    expect(e.message).toBe("llama-server refused the request: JSON schema conversion failed");
  });

  it("503 stays retryable; 500 is the engine's failure (502)", () => {
    expect(
      fromReply(503, { error: { code: 503, message: "Loading model", type: "unavailable_error" } }).statusCode,
    ).toBe(503);
    expect(fromReply(500, { error: { code: 500, message: "boom", type: "server_error" } }).statusCode).toBe(502);
    const text = toRbeeError(new EngineHttpError(readEngineError(500, "plain text failure"), "/x")) as RbeeError;
    expect(text.message).toContain("plain text failure");
  });
});

describe("the launch", () => {
  it("slots × context per slot, threads for both phases, metrics, no web UI, embeddings with pooling", () => {
    expect(
      llamaServerArgs({
        modelPath: "/m.gguf",
        modelId: "m",
        host: "127.0.0.1",
        port: 1234,
        parallel: 4,
        contextPerSlot: 1024,
        threads: 2,
        embeddings: true,
        pooling: "last",
      }),
    ).toEqual([
      "--model",
      "/m.gguf",
      "--alias",
      "m",
      "--host",
      "127.0.0.1",
      "--port",
      "1234",
      "--parallel",
      "4",
      "--ctx-size",
      "4096",
      "--cont-batching",
      "--threads",
      "2",
      "--threads-batch",
      "2",
      "--metrics",
      "--no-webui",
      "--embeddings",
      "--pooling",
      "last",
    ]);
  });

  it("the device: the CPU offloads nothing; a GPU is the only one made visible; a declared GPU runs on the CPU", () => {
    const device = (id: string, kind: string, simulated?: boolean) =>
      ({ id, kind, name: id, memory_total: 1, memory_free: 1, simulated }) as Parameters<typeof deviceLaunch>[0];
    expect(deviceLaunch(device("cpu", "cpu"))).toEqual({ args: ["--device", "none"], env: {} });
    expect(deviceLaunch(device("cuda:1", "cuda"))).toEqual({ args: [], env: { CUDA_VISIBLE_DEVICES: "1" } });
    expect(deviceLaunch(device("vulkan:0", "vulkan"))).toEqual({ args: [], env: { GGML_VK_VISIBLE_DEVICES: "0" } });
    expect(deviceLaunch(device("cuda:0", "cuda", true))).toEqual({ args: ["--device", "none"], env: {} });
  });

  it("with no llama-server anywhere, says what to do", async () => {
    const env = { PATH: "/nonexistent", RBEE_ENGINES_DIR: "/nonexistent/engines" };
    await expect(resolveLlamaServer(undefined, { env })).rejects.toThrow(
      /no working llama-server found \(none built in \/nonexistent\/engines, none added, none on PATH, RBEE_LLAMA_SERVER not set\): .*rbee engine build llama\.cpp.*rbee engine add llama-server <path>/,
    );
    expect(await resolveLlamaServer("/given/llama-server", { env: {} })).toBe("/given/llama-server");
    expect(await resolveLlamaServer(undefined, { env: { RBEE_LLAMA_SERVER: "/env/llama-server" } })).toBe(
      "/env/llama-server",
    );
  });
});

describe("Prometheus text, read leniently", () => {
  it("samples with and without labels; comments and garbage skipped", () => {
    const m = parsePrometheusText(
      '# HELP x\n# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 2\nbad line here\nx{a="b"} 1.5 123\ny NaN\nz notanumber\n',
    );
    expect(m.get("llamacpp:requests_processing")).toBe(2);
    expect(m.get('x{a="b"}')).toBe(1.5);
    expect(Number.isNaN(m.get("y"))).toBe(true);
    expect(m.has("z")).toBe(false);
  });
});

describe("the worker type", () => {
  it("launches `rbee worker serve llama-server` with the engine the hive's catalog found", async () => {
    const { llamaServerWorkerType } = await import("@rbee/adapter-llama-server/worker-type");
    const launch = llamaServerWorkerType.launch(
      {
        workerId: "w1",
        modelId: "stories260K",
        modelPath: "/m/stories260K.gguf",
        device: "cpu",
        deviceKind: "cpu",
        parallel: 2,
        engines: { "llama-server": "/engines/llama-server" },
      },
      {
        node: "/usr/bin/node",
        rbeeBin: "/rbee/bin/rbee.js",
        host: "127.0.0.1",
        port: 9300,
        heartbeatUrl: "http://127.0.0.1:7835",
        heartbeatIntervalMs: 5000,
        orphanTimeoutMs: 60_000,
        shutdownGraceMs: 30_000,
      },
    );
    expect(launch.command).toBe("/usr/bin/node");
    expect(launch.args.slice(0, 4)).toEqual(["/rbee/bin/rbee.js", "worker", "serve", "llama-server"]);
    expect(launch.args).toContain("--model=/m/stories260K.gguf");
    expect(launch.args).toContain("--parallel=2");
    expect(launch.args.at(-1)).toBe("--engine=/engines/llama-server");
    expect(llamaServerWorkerType.engine).toBe("llama-server");
    expect(llamaServerWorkerType.capabilities).toContain("embeddings");
  });
});
