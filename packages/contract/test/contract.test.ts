import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  ErrorBody,
  HeartbeatCommand,
  InferRequest,
  InferResponse,
  JobCreated,
  JobEvent,
  parseOrThrow,
  readErrorBody,
  readInferResponse,
  readJobCreated,
  readJobEvent,
  safeParse,
  WIRE_SCHEMAS,
  WorkerHeartbeat,
} from "../src/index.js";

describe("contract schemas", () => {
  it("InferRequest refuses unknown fields and names them, and wants exactly one of prompt and messages", () => {
    const r = safeParse(InferRequest, { prompt: "x", temprature: 0 }, "infer request");
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.param).toBe("temprature");
      expect(r.error.message).toContain("temprature: unknown field");
    }
    expect(safeParse(InferRequest, { max_tokens: 1 }, "x").ok).toBe(false);
    expect(parseOrThrow(InferRequest, { messages: [{ role: "user", content: "hi" }] }, "x").messages).toHaveLength(1);
  });

  it("heartbeats accept the optional groups and extra fields (a newer worker may report more)", () => {
    const hb = WorkerHeartbeat.parse({
      protocol_version: 1,
      worker_id: "w",
      status: "Ready",
      model: "m",
      device: "cuda:0",
      vram_used: 1,
      vram_total: 2,
      requests_total: 0,
      tokens_generated: 0,
      uptime_seconds: 1,
      last_request_at: null,
      queue_depth: 3,
      group_health: "degraded",
      something_new: true,
    });
    expect(hb.queue_depth).toBe(3);
    expect(HeartbeatCommand.safeParse({ type: "explode" }).success).toBe(false);
  });

  it("npm run schemas writes one JSON Schema per wire message", () => {
    const dir = mkdtempSync(join(tmpdir(), "rbee-schemas-"));
    try {
      execFileSync(process.execPath, [
        fileURLToPath(new URL("../dist/scripts/write-schemas.js", import.meta.url)),
        dir,
      ]);
      const files = readdirSync(dir).sort();
      expect(files).toEqual(
        Object.keys(WIRE_SCHEMAS)
          .map((n) => `${n}.json`)
          .sort(),
      );
      const infer = JSON.parse(readFileSync(join(dir, "InferRequest.json"), "utf8"));
      expect(infer.additionalProperties).toBe(false);
      expect(Object.keys(infer.properties)).toContain("json_schema");
      // the committed copies under docs/schemas are what `npm run schemas` writes today
      const committed = fileURLToPath(new URL("../../../docs/schemas/", import.meta.url));
      for (const f of files) {
        expect(readFileSync(join(committed, f), "utf8"), `docs/schemas/${f} is stale: run npm run schemas`).toBe(
          readFileSync(join(dir, f), "utf8"),
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("readInferResponse: the queen's cheap read of a worker's answer", () => {
  const plain = { text: "Once", tokens_generated: 1, prompt_tokens: 4, duration_ms: 2.5, finish_reason: "length" };
  const samples: unknown[] = [
    plain,
    { ...plain, cached_tokens: 3, time_to_first_token_ms: 1, stop_sequence: "\n", model: "m", extra: { kept: true } },
    { ...plain, text: 5 },
    { ...plain, tokens_generated: -1 },
    { ...plain, prompt_tokens: 1.5 },
    { ...plain, duration_ms: -1 },
    { ...plain, finish_reason: "eos" },
    { ...plain, cached_tokens: "3" },
    { ...plain, model: null },
    {
      ...plain,
      finish_reason: "tool_calls",
      tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }],
    },
    { ...plain, tool_calls: [{ id: 1 }] },
    { ...plain, logprobs: [{ token: "x", logprob: -1, bytes: [120], top_logprobs: [] }] },
    { ...plain, logprobs: "no" },
    [plain],
    null,
    "text",
  ];
  it("accepts and refuses exactly what the InferResponse schema does, and keeps unknown fields", () => {
    for (const sample of samples) {
      const read = readInferResponse(sample, "a sample");
      const parsed = InferResponse.safeParse(sample);
      expect(read.ok, JSON.stringify(sample)).toBe(parsed.success);
      if (read.ok && parsed.success) expect(read.value).toEqual(parsed.data);
    }
  });
});

describe("the light entry's readers: job events, a created job and error bodies without zod", () => {
  const at = 1_700_000_000_000;
  const events: unknown[] = [
    { seq: 0, at, type: "narration", source: "queen", message: "placing" },
    { seq: 1, at, type: "narration", source: "queen", message: "m", level: "warn", extra: 1 },
    { seq: 1, at, type: "narration", source: "queen", message: "m", level: "loud" },
    { seq: 1, at, type: "narration", source: 3, message: "m" },
    { seq: 2, at, type: "progress", done: 5, total: null, unit: "bytes" },
    { seq: 2, at, type: "progress", done: 5.5, total: 10, unit: "bytes", label: "model", rate: 2.5 },
    { seq: 2, at, type: "progress", done: -1, total: 10, unit: "bytes" },
    { seq: 2, at, type: "progress", done: 1, unit: "bytes" },
    { seq: 2, at, type: "progress", done: 1, total: 2, unit: "bytes", rate: -1 },
    { seq: 3, at, type: "token", text: "Once", index: 0 },
    { seq: 3, at, type: "token", text: "Once", index: 0.5 },
    { seq: 3, at, type: "token", index: 0 },
    { seq: 4, at, type: "data", data: { any: "thing" } },
    { seq: 4, at, type: "data" },
    { seq: 5, at, type: "done", result: { text: "x" } },
    { seq: 5, at, type: "done" },
    { seq: 6, at, type: "error", code: "model_not_found", message: "no such model" },
    { seq: 6, at, type: "error", message: "no code" },
    { seq: 7, at, type: "cancelled" },
    { seq: 7, at, type: "cancelled", reason: "by the user" },
    { seq: 7, at, type: "cancelled", reason: 1 },
    { seq: -1, at, type: "done" },
    { seq: 1.5, at, type: "done" },
    { seq: 1, type: "done" },
    { seq: 1, at: -5, type: "done" },
    { seq: 1, at, type: "future_event" },
    { seq: 1, at, type: "toString" },
    { seq: 1, at },
    [{ seq: 1, at, type: "done" }],
    null,
    "done",
  ];
  it("readJobEvent accepts and refuses exactly what the JobEvent schema does, and keeps unknown fields", () => {
    for (const sample of events) {
      const read = readJobEvent(sample);
      const parsed = JobEvent.safeParse(sample);
      expect(read !== undefined, JSON.stringify(sample)).toBe(parsed.success);
      if (read && parsed.success) expect(read).toEqual(parsed.data);
    }
  });

  it("readJobCreated and readErrorBody agree with JobCreated and ErrorBody", () => {
    const created: unknown[] = [
      { job_id: "j1", sse_url: "/v1/jobs/j1/stream" },
      { job_id: "j1", sse_url: "/x", extra: true },
      { job_id: 1, sse_url: "/x" },
      { job_id: "j1" },
      null,
      [],
    ];
    for (const sample of created) {
      expect(readJobCreated(sample) !== undefined, JSON.stringify(sample)).toBe(JobCreated.safeParse(sample).success);
    }
    const error = { message: "no", type: "invalid_request_error", code: "x", param: null };
    const bodies: unknown[] = [
      { error },
      { error: { ...error, code: null, param: "model", extra: 1 }, more: true },
      { error: { ...error, message: 1 } },
      { error: { ...error, type: undefined } },
      { error: { ...error, code: undefined } },
      { error: { ...error, param: 5 } },
      { error: "no" },
      { error: [] },
      {},
      [],
      null,
    ];
    for (const sample of bodies) {
      expect(readErrorBody(sample) !== undefined, JSON.stringify(sample)).toBe(ErrorBody.safeParse(sample).success);
    }
  });
});
