import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { availableParallelism } from "node:os";
import { type HeartbeatCommand, WorkerHeartbeat } from "@rbee/contract";
import {
  getJson,
  postJson,
  postSse,
  runRbee,
  STORIES_GREEDY_PREFIX,
  type StartedWorker,
  startLlmWorker,
  waitFor,
} from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const PROMPT = "Once upon a time";

/** A stand-in hive: records heartbeats and answers with whatever commands the test queues. */
class HeartbeatReceiver {
  readonly beats: WorkerHeartbeat[] = [];
  commands: HeartbeatCommand[] = [];
  #server: Server;
  url = "";

  constructor() {
    this.#server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString();
      });
      req.on("end", () => {
        this.beats.push(WorkerHeartbeat.parse(JSON.parse(body)));
        const commands = this.commands.splice(0);
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ ack: true, commands }));
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.#server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this.url;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((r) => this.#server.close(() => r()));
  }
}

describe("llm worker on stories260K (real inference)", () => {
  let w: StartedWorker;
  const infer = (body: Record<string, unknown>) => postJson(`${w.url}/v1/infer`, body);

  beforeAll(async () => {
    w = await startLlmWorker(["--parallel", "4"]);
  });
  afterAll(async () => {
    await w?.child.stop();
  });

  it("greedy 'Once upon a time' is deterministic and matches llama.cpp's continuation", async () => {
    const a = await infer({ prompt: PROMPT, max_tokens: 40, temperature: 0 });
    const b = await infer({ prompt: PROMPT, max_tokens: 40, temperature: 0 });
    expect(a.status, a.text).toBe(200);
    expect(a.body.text.startsWith(STORIES_GREEDY_PREFIX), a.body.text).toBe(true);
    expect(b.body.text).toBe(a.body.text);
    expect(a.body.tokens_generated).toBe(40);
    expect(a.body.finish_reason).toBe("length");
  });

  it("8 concurrent requests all finish, each equal to its serial greedy result", async () => {
    const prompts = [
      "Once upon a time",
      "The little dog",
      "One day, Tom",
      "Lily and Ben",
      "The sun was",
      "In the park",
      "Mom said",
      "The big tree",
    ];
    const serial: string[] = [];
    for (const p of prompts) serial.push((await infer({ prompt: p, max_tokens: 48, temperature: 0 })).body.text);
    const concurrent = await Promise.all(prompts.map((p) => infer({ prompt: p, max_tokens: 48, temperature: 0 })));
    for (const [i, r] of concurrent.entries()) {
      expect(r.status).toBe(200);
      expect(r.body.text, `prompt ${JSON.stringify(prompts[i])}`).toBe(serial[i]);
    }
  });

  it("a request that arrives while others generate starts at once, not when they end", async () => {
    // every sequence holds an earlier request's tokens, so the new request's sequence must be
    // erased first: an erase needs the context, which running generations kept until they ended
    await Promise.all(["a", "b", "c", "d"].map((p) => infer({ prompt: p, max_tokens: 8, temperature: 0 })));
    let streaming = 0;
    let late: Promise<{ doneAt: number; status: number }> | undefined;
    const long = (prompt: string) =>
      postSse(
        `${w.url}/v1/infer`,
        { prompt, max_tokens: 300, temperature: 0, stream: true },
        {
          onEvent: (e) => {
            if (e.event === "token" && e.data !== null && (e.data as { index: number }).index === 0) streaming++;
            // both are generating: a third request arrives
            if (streaming === 2 && late === undefined)
              late = infer({ prompt: "The little dog", max_tokens: 4, temperature: 0 }).then((r) => ({
                doneAt: performance.now(),
                status: r.status,
              }));
            return undefined;
          },
        },
      ).then((r) => ({ ...r, doneAt: performance.now() }));
    const [a, b] = await Promise.all([long(PROMPT), long("One day, Tom")]);
    for (const r of [a, b]) {
      const done = r.events.find((e) => e.event === "done")?.data as { tokens_generated: number };
      expect(done.tokens_generated).toBe(300);
    }
    const short = await (late as NonNullable<typeof late>);
    expect(short.status).toBe(200);
    // it ended while the long ones were still generating (it waited for them to end before)
    expect(short.doneAt).toBeLessThan(Math.min(a.doneAt, b.doneAt));
  });

  it("a seeded sampled request repeats exactly with the same seed", async () => {
    const body = { prompt: PROMPT, max_tokens: 30, temperature: 1, seed: 42 };
    const a = await infer(body);
    const b = await infer(body);
    expect(b.body.text).toBe(a.body.text);
  });

  it("stop strings end generation before the stop, with finish_reason stop and the stop that matched", async () => {
    const r = await infer({ prompt: PROMPT, max_tokens: 60, temperature: 0, stop: ["zzz", "Lily"] });
    expect(r.body.text).toBe(", there was a little girl named ");
    expect(r.body.finish_reason).toBe("stop");
    expect(r.body.stop_sequence).toBe("Lily");
    const limited = await infer({ prompt: PROMPT, max_tokens: 3, temperature: 0, stop: ["Lily"] });
    expect(limited.body.stop_sequence).toBeUndefined();
  });

  it("chat messages work with the plain fallback template (the model has none)", async () => {
    const r = await infer({
      messages: [
        { role: "system", content: "You tell stories." },
        { role: "user", content: "Tell me about a cat." },
      ],
      max_tokens: 30,
      temperature: 0,
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.prompt_tokens).toBeGreaterThan(5);
    expect(r.body.text).not.toContain("User:");
  });

  it("a prompt longer than the context answers 400 naming both lengths", async () => {
    const huge = "the cat sat on the mat. ".repeat(50_000); // ~1.2 MB, hundreds of thousands of tokens
    const r = await infer({ prompt: huge, max_tokens: 5 });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("context_length_exceeded");
    // refused by its size before it is tokenized (issue 15): a lower bound of its length
    expect(r.body.error.message).toMatch(/the prompt is at least \d+ tokens but the context holds 2048/);
  });

  it("a json_schema of an object yields parseable JSON", async () => {
    const schema = {
      type: "object",
      properties: { name: { type: "string", maxLength: 12 }, age: { type: "integer", minimum: 1, maximum: 9 } },
      required: ["name", "age"],
    };
    const r = await infer({ prompt: "A person:", json_schema: schema, max_tokens: 80, temperature: 0 });
    expect(r.status, r.text).toBe(200);
    const v = JSON.parse(r.body.text);
    expect(typeof v.name).toBe("string");
    expect(Number.isInteger(v.age)).toBe(true);
  });

  it("an invalid json_schema answers 400 naming json_schema", async () => {
    const r = await infer({ prompt: "x", json_schema: { type: "no-such-type" } });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe("json_schema");
  });

  it("POST /v1/embed returns one vector per input", async () => {
    const r = await postJson(`${w.url}/v1/embed`, { input: ["a cat", "a dog"] });
    expect(r.status, r.text).toBe(200);
    expect(r.body.embeddings).toHaveLength(2);
    expect(r.body.embeddings[0].length).toBeGreaterThan(0);
    expect(r.body.embeddings[0]).not.toEqual(r.body.embeddings[1]);
  });

  it("counts requests and tokens in /metrics", async () => {
    const r = await getJson(`${w.url}/metrics`);
    const m = /^rbee_worker_tokens_generated_total (\d+)/m.exec(r.text);
    expect(Number(m?.[1])).toBeGreaterThan(100);
    expect(r.text).toMatch(/^rbee_worker_status\{status="Ready"\} 1/m);
  });
});

describe("llm worker slots, queue and cancellation", () => {
  it("a cancelled stream frees its slot for the next request", async () => {
    const w = await startLlmWorker(["--parallel", "1"]);
    try {
      const first = await postSse(
        `${w.url}/v1/infer`,
        { prompt: PROMPT, temperature: 0, stream: true },
        { onEvent: (e) => (e.event === "token" && e.data.index >= 3 ? "stop" : undefined) },
      );
      expect(first.disconnected).toBe(true);
      // with one slot, this only runs once the cancelled generation let go of it
      const next = await postJson(`${w.url}/v1/infer`, { prompt: PROMPT, max_tokens: 5, temperature: 0 });
      expect(next.status).toBe(200);
      const metrics = await getJson(`${w.url}/metrics`);
      expect(metrics.text).toMatch(/^rbee_worker_requests_total\{outcome="cancelled"\} 1/m);
    } finally {
      await w.child.stop();
    }
  });

  it("a full queue answers 429 with Retry-After", async () => {
    const w = await startLlmWorker(["--parallel", "1", "--max-queue", "1", "--ctx-size", "512"]);
    try {
      const long = { prompt: PROMPT, temperature: 0 }; // runs to the end of the context
      const results = await Promise.all([1, 2, 3, 4].map(() => postJson(`${w.url}/v1/infer`, long)));
      const refused = results.filter((r) => r.status === 429);
      expect(refused.length).toBeGreaterThanOrEqual(1);
      expect(Number(refused[0]?.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(refused[0]?.body.error.type).toBe("rate_limit_error");
      expect(results.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(2);
    } finally {
      await w.child.stop();
    }
  });
});

describe("llm worker life cycle", () => {
  it("SIGTERM lets in-flight work finish, refuses new work with 503, and exits 0", async () => {
    const w = await startLlmWorker(["--parallel", "1"]);
    const inflight = postJson(`${w.url}/v1/infer`, { prompt: PROMPT, temperature: 0 });
    await waitFor(async () => ((await getJson(`${w.url}/health`)).body.status === "Busy" ? true : undefined));
    w.child.kill("SIGTERM");
    const refused = await waitFor(async () => {
      const r = await postJson(`${w.url}/v1/infer`, { prompt: PROMPT, max_tokens: 2 });
      return r.status === 503 ? r : undefined;
    });
    expect(refused.body.error.code).toBe("shutting_down");
    const done = await inflight;
    expect(done.status).toBe(200);
    expect(done.body.finish_reason).not.toBe("cancelled");
    expect(done.body.tokens_generated).toBeGreaterThan(100);
    expect(await w.child.waitForExit()).toEqual({ code: 0, signal: null });
  });

  it("sends heartbeats with growing counters to its heartbeat URL", async () => {
    const hive = new HeartbeatReceiver();
    const url = await hive.start();
    const w = await startLlmWorker([
      "--heartbeat-url",
      url,
      "--heartbeat-interval",
      "0.2",
      "--worker-id",
      "llm-hb-test",
    ]);
    try {
      await waitFor(() => (hive.beats.some((b) => b.status === "Ready") ? true : undefined));
      await postJson(`${w.url}/v1/infer`, { prompt: PROMPT, max_tokens: 20, temperature: 0 });
      const after1 = await waitFor(() => hive.beats.find((b) => b.requests_total === 1));
      await postJson(`${w.url}/v1/infer`, { prompt: PROMPT, max_tokens: 20, temperature: 0 });
      const after2 = await waitFor(() => hive.beats.find((b) => b.requests_total === 2));
      expect(after1.worker_id).toBe("llm-hb-test");
      expect(after1.model).toBe("stories260K");
      expect(after1.tokens_generated).toBe(20);
      expect(after2.tokens_generated).toBe(40);
      expect(after2.uptime_seconds).toBeGreaterThanOrEqual(after1.uptime_seconds);
      expect(Date.parse(after2.last_request_at ?? "")).toBeGreaterThanOrEqual(Date.parse(after1.last_request_at ?? ""));
      expect(after2.vram_used).toBeGreaterThan(1_000_000);
      expect(after2.memory_used).toBeGreaterThan(after2.vram_used);
      expect(after2.slots).toBe(4);
    } finally {
      await w.child.stop();
      await hive.close();
    }
  });

  it("carries out a shutdown command from a heartbeat reply", async () => {
    const hive = new HeartbeatReceiver();
    const url = await hive.start();
    const w = await startLlmWorker(["--heartbeat-url", url, "--heartbeat-interval", "0.2"]);
    try {
      hive.commands.push({ type: "shutdown", reason: "test says stop" });
      expect(await w.child.waitForExit(15_000)).toEqual({ code: 0, signal: null });
      expect(w.child.stdout).toContain("test says stop");
      expect(hive.beats.at(-1)?.status).toBe("Stopped");
    } finally {
      await w.child.stop();
      await hive.close();
    }
  });

  it("stops itself when its heartbeat target stays unreachable (the orphan rule)", async () => {
    const hive = new HeartbeatReceiver();
    const url = await hive.start();
    const w = await startLlmWorker(["--heartbeat-url", url, "--heartbeat-interval", "0.2", "--orphan-timeout", "1.5"]);
    try {
      await waitFor(() => (hive.beats.length > 0 ? true : undefined));
      await hive.close(); // the hive dies
      expect(await w.child.waitForExit(20_000)).toEqual({ code: 0, signal: null });
      expect(w.child.stdout).toMatch(/heartbeat target unreachable/);
    } finally {
      await w.child.stop();
    }
  });
});

describe("llm worker start-up errors", () => {
  it("an unknown model path exits non-zero with one clear line", async () => {
    const r = await runRbee(["worker", "serve", "llm", "--model", "/nonexistent/model.gguf", "--port", "0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^rbee worker: model file not found: \/nonexistent\/model.gguf/m);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/); // no stack trace
  });

  it("a device that is not on this machine is named in the error", async () => {
    const r = await runRbee(["worker", "serve", "llm", "--model", "x.gguf", "--device", "cuda:3", "--port", "0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/device 'cuda:3' was not found on this machine; devices here: cpu/);
  });

  it("more threads than cores is refused", async () => {
    const tooMany = String(availableParallelism() + 1);
    const r = await runRbee(["worker", "serve", "llm", "--model", "x.gguf", "--threads", tooMany, "--port", "0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/more than the \d+ cores/);
  });

  it("a bad flag value is a usage error (exit 2) naming the flag", async () => {
    const r = await runRbee(["worker", "serve", "llm", "--model", "x.gguf", "--parallel", "zero"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--parallel/);
  });
});
