import { ollamaBody, ollamaMode, ollamaUrlFromHost, toRbeeError } from "@rbee/adapter-ollama";
import { EngineHttpError } from "@rbee/worker-kit";
import { describe, expect, it } from "vitest";

const reply = (status: number, error: string) =>
  new EngineHttpError({ status, message: error, body: { error } }, "/api/chat");

describe("ollama adapter: translation (pure)", () => {
  it("Ollama's errors become rbee errors with its words", () => {
    expect(toRbeeError(reply(404, "model 'x' not found"), "x")).toMatchObject({
      statusCode: 404,
      code: "model_not_found",
    });
    expect(toRbeeError(reply(400, "invalid format: 7"), "x")).toMatchObject({
      statusCode: 400,
      code: "invalid_request",
      param: "json_schema",
      message: "ollama refused the request: invalid format: 7",
    });
    expect(
      toRbeeError(reply(500, "model requires more system memory (9 GiB) than is available (1 GiB)"), "x"),
    ).toMatchObject({
      statusCode: 503,
      code: "insufficient_memory",
    });
    expect(toRbeeError(reply(500, "llama runner process has terminated"), "x")).toMatchObject({
      statusCode: 502,
      code: "engine_error",
      message: "ollama failed (HTTP 500): llama runner process has terminated",
    });
  });

  it("OLLAMA_HOST is read as Ollama reads it", () => {
    expect(ollamaUrlFromHost(undefined)).toBeUndefined();
    expect(ollamaUrlFromHost("0.0.0.0")).toBe("http://127.0.0.1:11434");
    expect(ollamaUrlFromHost("gpu-box:8080")).toBe("http://gpu-box:8080");
    expect(ollamaUrlFromHost("https://ollama.lan")).toBe("https://ollama.lan:11434");
  });

  it("attach unless --start or RBEE_OLLAMA_START=1 (and no --ollama-url)", () => {
    expect(ollamaMode({}, {})).toBe("attach");
    expect(ollamaMode({ start: true }, {})).toBe("start");
    expect(ollamaMode({}, { RBEE_OLLAMA_START: "1" })).toBe("start");
    expect(ollamaMode({ ollamaUrl: "http://x:1" }, { RBEE_OLLAMA_START: "1" })).toBe("attach");
  });

  it("keep_alive: a number of seconds is sent as a number, a duration as a string", () => {
    expect(ollamaBody({ prompt: "a" }, { model: "m", keepAlive: "-1" }).keep_alive).toBe(-1);
    expect(ollamaBody({ prompt: "a" }, { model: "m", keepAlive: "1h" }).keep_alive).toBe("1h");
    expect(ollamaBody({ prompt: "a" }, { model: "m" })).not.toHaveProperty("keep_alive");
  });
});
