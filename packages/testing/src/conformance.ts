import {
  EmbedResponse,
  ErrorBody,
  HealthResponse,
  ImageProgressEvent,
  ImageResponse,
  InferResponse,
  PROTOCOL_VERSION,
  TokenEvent,
  WorkerInfo,
} from "@rbee/contract";
import { afterAll, beforeAll, describe, expect, it, type TestContext } from "vitest";
import type { ExitInfo } from "./child.js";
import { pngSize } from "./fixtures/comfyui-api/png.js";
import { getJson, postJson, postSse } from "./http.js";

/** A worker (bespoke or adapter) under the conformance suite. */
export interface WorkerUnderTest {
  url: string;
  /** The model id the worker serves. */
  model: string;
  /** Cluster token, when the worker requires one. */
  token?: string;
  /** A prompt the model continues (or, for an image worker, pictures). */
  prompt: string;
  /** Sends SIGTERM and resolves how the process exited. */
  terminate: () => Promise<ExitInfo>;
}

export type ConformanceCheck =
  | "chat"
  | "json_schema"
  | "deterministic_greedy"
  | "stop"
  | "embeddings"
  | "metrics"
  | "disconnect"
  | "sigterm"
  | "image_seed";

export interface ConformanceOptions {
  start: () => Promise<WorkerUnderTest>;
  /** Cleans up after the suite (kill the process if still running). */
  stop: () => Promise<void>;
  /** Checks that cannot apply to this worker, each with the reason, shown in the test name. */
  skip?: Partial<Record<ConformanceCheck, string>>;
}

/** What a check needs the worker to serve; checks of a capability the worker does not list are skipped. */
type Needs = "text-generation" | "image-generation" | undefined;

/**
 * The worker contract of DESIGN.md as one suite, run against every worker and adapter.
 * Each `it` names the rule it checks; skipped rules say why. Checks of text generation run when the
 * worker's /info lists `text-generation`, checks of image generation when it lists `image-generation`.
 */
export function describeWorkerConformance(name: string, options: ConformanceOptions): void {
  describe(`worker contract: ${name}`, () => {
    let w: WorkerUnderTest;
    let capabilities: string[] = [];
    const url = (path: string) => new URL(path, w.url).toString();
    /** An `it` that runs when the worker serves `needs`, and is skipped (saying why) when not. */
    const serving = (needs: Needs, title: string, fn: (ctx: TestContext) => Promise<void>) =>
      it(title, async (ctx) => {
        if (needs !== undefined && !capabilities.includes(needs)) {
          ctx.skip(`the worker does not list ${needs}`);
          return;
        }
        await fn(ctx);
      });
    const text = (title: string, fn: (ctx: TestContext) => Promise<void>) => serving("text-generation", title, fn);
    const images = (title: string, fn: (ctx: TestContext) => Promise<void>) => serving("image-generation", title, fn);
    const check = (
      id: ConformanceCheck,
      title: string,
      fn: (ctx: TestContext) => Promise<void>,
      needs: Needs = "text-generation",
    ) => {
      const reason = options.skip?.[id];
      if (reason) it.skip(`${title} (skipped: ${reason})`, fn);
      else serving(needs, title, fn);
    };

    beforeAll(async () => {
      w = await options.start();
      const info = await getJson(url("/info"), w.token);
      capabilities = info.status === 200 ? WorkerInfo.parse(info.body).capabilities : [];
    }, 120_000);
    afterAll(async () => {
      await options.stop();
    }, 60_000);

    it("GET /health answers 200 with a serving status", async () => {
      const r = await getJson(url("/health"));
      expect(r.status).toBe(200);
      const body = HealthResponse.parse(r.body);
      expect(["Ready", "Busy"]).toContain(body.status);
    });

    it("GET /info describes the worker with the current protocol version", async () => {
      const r = await getJson(url("/info"), w.token);
      expect(r.status).toBe(200);
      const info = WorkerInfo.parse(r.body);
      expect(info.protocol_version).toBe(PROTOCOL_VERSION);
      expect(info.model_id).toBe(w.model);
      expect(info.port).toBe(Number(new URL(w.url).port));
      expect(info.slots).toBeGreaterThanOrEqual(1);
    });

    text("POST /v1/infer with a prompt answers an InferResponse within max_tokens", async () => {
      const r = await postJson(
        url("/v1/infer"),
        { prompt: w.prompt, max_tokens: 8, temperature: 0 },
        { token: w.token },
      );
      expect(r.status, r.text).toBe(200);
      const res = InferResponse.parse(r.body);
      expect(res.tokens_generated).toBeGreaterThan(0);
      expect(res.tokens_generated).toBeLessThanOrEqual(8);
      expect(res.prompt_tokens).toBeGreaterThan(0);
      expect(["stop", "length"]).toContain(res.finish_reason);
      expect(res.text.length).toBeGreaterThan(0);
    });

    text(
      "stream: token events with consecutive indexes, then exactly one done whose text is their concatenation",
      async () => {
        const r = await postSse(
          url("/v1/infer"),
          { prompt: w.prompt, max_tokens: 16, temperature: 0, stream: true },
          { token: w.token },
        );
        expect(r.status).toBe(200);
        expect(r.headers.get("content-type")).toMatch(/^text\/event-stream/);
        const tokens = r.events.filter((e) => e.event === "token");
        const terminal = r.events.filter((e) => e.event === "done" || e.event === "error");
        expect(terminal).toHaveLength(1);
        expect(r.events.at(-1)?.event).toBe("done");
        for (const [i, e] of tokens.entries()) expect(TokenEvent.parse(e.data).index).toBe(i);
        const done = InferResponse.parse(r.events.at(-1)?.data);
        expect(tokens.map((e) => e.data.text).join("")).toBe(done.text);
      },
    );

    check("deterministic_greedy", "greedy streaming and non-streaming give the same text", async () => {
      const body = { prompt: w.prompt, max_tokens: 24, temperature: 0 };
      const plain = await postJson(url("/v1/infer"), body, { token: w.token });
      const streamed = await postSse(url("/v1/infer"), { ...body, stream: true }, { token: w.token });
      const text = streamed.events
        .filter((e) => e.event === "token")
        .map((e) => e.data.text)
        .join("");
      expect(text).toBe(plain.body.text);
    });

    check("stop", "a stop string ends generation, and is left out of the text, streamed or not", async () => {
      const body = { prompt: w.prompt, max_tokens: 24, temperature: 0 };
      const free = await postJson(url("/v1/infer"), body, { token: w.token });
      expect(free.status, free.text).toBe(200);
      const text = InferResponse.parse(free.body).text;
      // a few characters from the middle of what the model says unprompted
      const at = Math.max(1, text.indexOf(" ", Math.floor(text.length / 3)));
      const stop = text.slice(at, at + 4);
      expect(
        stop.trim().length,
        `the model's text is too short for a stop string: ${JSON.stringify(text)}`,
      ).toBeGreaterThan(0);
      const expected = text.slice(0, text.indexOf(stop));
      const plain = await postJson(url("/v1/infer"), { ...body, stop: [stop] }, { token: w.token });
      expect(plain.status, plain.text).toBe(200);
      const res = InferResponse.parse(plain.body);
      expect(res.text).toBe(expected);
      expect(res.finish_reason).toBe("stop");
      const streamed = await postSse(url("/v1/infer"), { ...body, stop, stream: true }, { token: w.token });
      const pieces = streamed.events.filter((e) => e.event === "token").map((e) => e.data.text);
      expect(pieces.join("")).toBe(expected);
      expect(InferResponse.parse(streamed.events.at(-1)?.data).finish_reason).toBe("stop");
    });

    check("embeddings", "POST /v1/embed answers one vector per input (when /info lists embeddings)", async (ctx) => {
      const info = WorkerInfo.parse((await getJson(url("/info"), w.token)).body);
      if (!info.capabilities.includes("embeddings")) {
        ctx.skip("the worker does not list the embeddings capability");
        return;
      }
      const r = await postJson(url("/v1/embed"), { input: ["Once upon a time", "a little dog"] }, { token: w.token });
      expect(r.status, r.text).toBe(200);
      const res = EmbedResponse.parse(r.body);
      expect(res.embeddings).toHaveLength(2);
      const [a, b] = res.embeddings as [number[], number[]];
      expect(a.length).toBeGreaterThan(0);
      expect(b).toHaveLength(a.length);
      expect(a.every(Number.isFinite)).toBe(true);
      expect(a).not.toEqual(b);
      expect(res.prompt_tokens).toBeGreaterThan(0);
      const one = await postJson(url("/v1/embed"), { input: "Once upon a time" }, { token: w.token });
      expect(one.status, one.text).toBe(200);
      const single = EmbedResponse.parse(one.body).embeddings[0] as number[];
      for (const [i, v] of single.entries()) expect(v).toBeCloseTo(a[i] as number, 3);
    });

    check("chat", "POST /v1/infer with chat messages answers", async () => {
      const r = await postJson(
        url("/v1/infer"),
        { messages: [{ role: "user", content: "Tell me a story." }], max_tokens: 8, temperature: 0 },
        { token: w.token },
      );
      expect(r.status, r.text).toBe(200);
      expect(InferResponse.parse(r.body).prompt_tokens).toBeGreaterThan(0);
    });

    check("json_schema", "json_schema constrains the output to JSON that matches it", async () => {
      const schema = {
        type: "object",
        properties: { happy: { type: "boolean" }, mood: { enum: ["glad", "sad"] } },
        required: ["happy", "mood"],
      };
      const r = await postJson(
        url("/v1/infer"),
        { prompt: w.prompt, json_schema: schema, max_tokens: 64, temperature: 0 },
        { token: w.token },
      );
      expect(r.status, r.text).toBe(200);
      const value = JSON.parse(r.body.text);
      expect(typeof value.happy).toBe("boolean");
      expect(["glad", "sad"]).toContain(value.mood);
    });

    describe("bad input answers 4xx in the error shape, naming what is wrong", () => {
      const expectError = (r: { status: number; body: unknown; text: string }, status: number) => {
        expect(r.status, r.text).toBe(status);
        return ErrorBody.parse(r.body).error;
      };
      text("malformed JSON", async () => {
        const e = expectError(await postJson(url("/v1/infer"), '{"prompt": "x",', { token: w.token }), 400);
        expect(e.message).toMatch(/not valid JSON/);
      });
      text("an unknown field", async () => {
        const e = expectError(
          await postJson(url("/v1/infer"), { prompt: "x", bogus_field: 1 }, { token: w.token }),
          400,
        );
        expect(e.message).toContain("bogus_field");
        expect(e.param).toBe("bogus_field");
      });
      text("a wrong type", async () => {
        const e = expectError(
          await postJson(url("/v1/infer"), { prompt: "x", max_tokens: "ten" }, { token: w.token }),
          400,
        );
        expect(e.param).toBe("max_tokens");
      });
      text("a negative max_tokens", async () => {
        const e = expectError(
          await postJson(url("/v1/infer"), { prompt: "x", max_tokens: -5 }, { token: w.token }),
          400,
        );
        expect(e.param).toBe("max_tokens");
      });
      text("both prompt and messages, or neither", async () => {
        const both = { prompt: "x", messages: [{ role: "user", content: "y" }] };
        expectError(await postJson(url("/v1/infer"), both, { token: w.token }), 400);
        expectError(await postJson(url("/v1/infer"), { max_tokens: 3 }, { token: w.token }), 400);
      });
      text("a model the worker does not serve", async () => {
        const e = expectError(
          await postJson(url("/v1/infer"), { prompt: "x", model: "no-such-model" }, { token: w.token }),
          404,
        );
        expect(e.code).toBe("model_not_found");
      });
      it("an unknown route and a wrong method", async () => {
        expectError(await getJson(url("/v1/nothing-here"), w.token), 404);
        expectError(await getJson(url("/v1/infer"), w.token), 405);
      });
    });

    check(
      "metrics",
      "GET /metrics serves Prometheus text",
      async () => {
        const r = await getJson(url("/metrics"), w.token);
        expect(r.status).toBe(200);
        expect(r.headers.get("content-type")).toMatch(/^text\/plain/);
        expect(r.text).toMatch(/^# TYPE \S+ (counter|gauge|histogram)/m);
      },
      undefined,
    );

    check("disconnect", "a client that disconnects mid-stream does not hurt the worker", async () => {
      const r = await postSse(
        url("/v1/infer"),
        { prompt: w.prompt, max_tokens: 400, temperature: 0, stream: true },
        { token: w.token, onEvent: (e) => (e.event === "token" ? "stop" : undefined) },
      );
      expect(r.disconnected).toBe(true);
      const next = await postJson(
        url("/v1/infer"),
        { prompt: w.prompt, max_tokens: 4, temperature: 0 },
        { token: w.token },
      );
      expect(next.status).toBe(200);
    });

    describe("image generation (workers that list image-generation)", () => {
      const body = () => ({ prompt: w.prompt, width: 64, height: 64, steps: 4 });
      const decode = (image: { data: string; mime_type: string }) => {
        expect(image.mime_type).toBe("image/png");
        return Buffer.from(image.data, "base64");
      };

      images("POST /v1/images answers n real images of the size asked for, with their seeds", async () => {
        const r = await postJson(url("/v1/images"), { ...body(), n: 2, width: 96, seed: 42 }, { token: w.token });
        expect(r.status, r.text).toBe(200);
        const res = ImageResponse.parse(r.body);
        expect(res.model).toBe(w.model);
        expect(res.images).toHaveLength(2);
        for (const image of res.images) expect(pngSize(decode(image))).toEqual({ width: 96, height: 64 });
        expect(res.images.map((i) => i.seed)).toEqual([42, 43]);
      });

      check(
        "image_seed",
        "the same seed gives the same image, another seed another one",
        async () => {
          const one = async (seed: number) => {
            const r = await postJson(url("/v1/images"), { ...body(), seed }, { token: w.token });
            expect(r.status, r.text).toBe(200);
            return ImageResponse.parse(r.body).images[0]?.data;
          };
          const a = await one(7);
          expect(await one(7)).toBe(a);
          expect(await one(8)).not.toBe(a);
        },
        "image-generation",
      );

      images("stream: progress events whose fraction never goes back, then exactly one done", async () => {
        const r = await postSse(url("/v1/images"), { ...body(), steps: 6, stream: true }, { token: w.token });
        expect(r.status).toBe(200);
        const progress = r.events.filter((e) => e.event === "progress").map((e) => ImageProgressEvent.parse(e.data));
        expect(progress.length).toBeGreaterThan(0);
        for (let i = 1; i < progress.length; i++) {
          expect(progress[i]?.fraction).toBeGreaterThanOrEqual(progress[i - 1]?.fraction as number);
        }
        expect(progress.some((p) => p.step !== undefined && p.steps === 6)).toBe(true);
        expect(r.events.filter((e) => e.event === "done" || e.event === "error")).toHaveLength(1);
        expect(r.events.at(-1)?.event).toBe("done");
        expect(ImageResponse.parse(r.events.at(-1)?.data).images).toHaveLength(1);
      });

      images("bad image requests answer 400 naming the field, and another model 404", async () => {
        const bad = async (extra: Record<string, unknown>, param: string) => {
          const r = await postJson(url("/v1/images"), { ...body(), ...extra }, { token: w.token });
          expect(r.status, r.text).toBe(400);
          expect(ErrorBody.parse(r.body).error.param).toBe(param);
        };
        await bad({ bogus_field: 1 }, "bogus_field");
        await bad({ width: 100 }, "width");
        await bad({ n: 0 }, "n");
        await bad({ prompt: "" }, "prompt");
        const other = await postJson(url("/v1/images"), { ...body(), model: "no-such-model" }, { token: w.token });
        expect(other.status, other.text).toBe(404);
        expect(ErrorBody.parse(other.body).error.code).toBe("model_not_found");
      });

      images("a text request to an image worker is a 400 that says it makes images", async (ctx) => {
        if (capabilities.includes("text-generation")) {
          ctx.skip("the worker generates text too");
          return;
        }
        const r = await postJson(url("/v1/infer"), { prompt: "x", max_tokens: 4 }, { token: w.token });
        expect(r.status, r.text).toBe(400);
        expect(ErrorBody.parse(r.body).error.message).toMatch(/image/);
      });

      images("a client that leaves mid-generation does not hurt the worker", async () => {
        const r = await postSse(
          url("/v1/images"),
          { ...body(), steps: 50, stream: true },
          { token: w.token, onEvent: (e) => (e.event === "progress" ? "stop" : undefined) },
        );
        expect(r.disconnected).toBe(true);
        const next = await postJson(url("/v1/images"), body(), { token: w.token });
        expect(next.status, next.text).toBe(200);
      });
    });

    check(
      "sigterm",
      "SIGTERM stops the worker with exit code 0",
      async () => {
        const exit = await w.terminate();
        expect(exit).toEqual({ code: 0, signal: null });
      },
      undefined,
    );
  });
}
