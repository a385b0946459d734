import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorBody, ImageResponse } from "@rbee/contract";
import { type ComfyUiFixture, postJson, postSse, type StartedWorker, startWorker, waitFor } from "@rbee/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_WORKFLOW_PATH } from "../src/workflow.js";
import { startAttached, startFixture } from "./helpers.js";

// The ComfyUI adapter's failures, against the ComfyUI API FIXTURE (not ComfyUI): each in ComfyUI's
// own shape (a /prompt validation error with node_errors, an execution_error over the websocket, a
// websocket that closes), and what the worker answers for it.
const dir = mkdtempSync(join(tmpdir(), "rbee-comfyui-"));
const defaultGraph = () =>
  JSON.parse(readFileSync(DEFAULT_WORKFLOW_PATH, "utf8")) as Record<string, { inputs: Record<string, unknown> }>;

function workflowFile(name: string, edit: (g: ReturnType<typeof defaultGraph>) => unknown): string {
  const path = join(dir, `${name}.json`);
  writeFileSync(path, JSON.stringify(edit(defaultGraph())));
  return path;
}

const body = { prompt: "a bee", width: 64, height: 64, steps: 4 };

describe("comfyui adapter: failures, in ComfyUI's words", () => {
  let fixture: ComfyUiFixture;
  const workers: StartedWorker[] = [];
  const attach = async (args: string[] = [], model?: string) => {
    const w = await startAttached(fixture, args, model);
    workers.push(w);
    return w;
  };

  beforeAll(async () => {
    fixture = await startFixture({ stepDelayMs: 10 });
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.child.stop();
  });
  afterAll(async () => {
    await fixture.stop();
  });

  it("a checkpoint ComfyUI does not have fails the start, listing the ones it has", async () => {
    const start = startWorker("comfyui", ["--comfyui-url", fixture.url], { model: "sdxl-turbo", timeoutMs: 30_000 });
    await expect(start).rejects.toThrow(
      /model 'sdxl-turbo' was not found: ComfyUI at http:\/\/127\.0\.0\.1:\d+ has no checkpoint 'sdxl-turbo' in models\/checkpoints; it has: fixture-sd15\.safetensors/,
    );
  });

  it("no ComfyUI at the URL fails the start with what to do", async () => {
    const start = startWorker("comfyui", ["--comfyui-url", "http://127.0.0.1:9"], {
      model: "fixture-sd15",
      timeoutMs: 30_000,
    });
    await expect(start).rejects.toThrow(/no ComfyUI answers at http:\/\/127\.0\.0\.1:9: .*--comfyui-url/);
  });

  it("ComfyUI's validation error (node_errors) is a 400 naming the node and the input, with the checkpoint as model_not_found", async () => {
    // a workflow whose checkpoint is written in it, not an input: ComfyUI validates it at /prompt
    const fixed = workflowFile("fixed-checkpoint", (g) => {
      (g["4"] as { inputs: Record<string, unknown> }).inputs.ckpt_name = "gone.safetensors";
      return g;
    });
    const w = await attach(["--workflow", fixed]);
    const r = await postJson(`${w.url}/v1/images`, body);
    expect(r.status, r.text).toBe(404);
    const e = ErrorBody.parse(r.body).error;
    expect(e.code).toBe("model_not_found");
    expect(e.message).toMatch(
      /ComfyUI has no such checkpoint: ckpt_name: 'gone\.safetensors' not in \['fixture-sd15\.safetensors'\]/,
    );
    // another validation error: a value out of range, named by node and input
    const tiny = workflowFile("bad-cfg", (g) => {
      (g["3"] as { inputs: Record<string, unknown> }).inputs.cfg = 500;
      return g;
    });
    const w2 = await attach(["--workflow", tiny]);
    const r2 = await postJson(`${w2.url}/v1/images`, body);
    expect(r2.status, r2.text).toBe(400);
    const e2 = ErrorBody.parse(r2.body).error;
    expect(e2.code).toBe("workflow_invalid");
    expect(e2.message).toBe("ComfyUI refused bad-cfg: node 3 (KSampler): Value 500 bigger than max of 100: cfg");
  });

  it("a workflow without the prompt input fails the start naming it; a request without a workflow's own input names it", async () => {
    const noPrompt = workflowFile("no-prompt", (g) => {
      (g["6"] as { inputs: Record<string, unknown> }).inputs.text = "a fixed text";
      return g;
    });
    await expect(
      startWorker("comfyui", ["--comfyui-url", fixture.url, "--workflow", noPrompt], {
        model: "fixture-sd15",
        timeoutMs: 30_000,
      }),
    ).rejects.toThrow(/workflow no-prompt has no input 'prompt': put "\{\{prompt\}\}" where the text prompt goes/);

    const styled = workflowFile("styled", (g) => {
      (g["6"] as { inputs: Record<string, unknown> }).inputs.text = "{{prompt}}, in the style of {{style}}";
      return g;
    });
    const w = await attach(["--workflow", styled]);
    const missing = await postJson(`${w.url}/v1/images`, body);
    expect(missing.status, missing.text).toBe(400);
    expect(ErrorBody.parse(missing.body).error).toMatchObject({
      param: "inputs.style",
      message: "workflow styled needs the input 'style' and the request gave none: send it as inputs.style",
    });
    const unknown = await postJson(`${w.url}/v1/images`, { ...body, inputs: { mood: "calm" } });
    expect(unknown.status, unknown.text).toBe(400);
    expect(ErrorBody.parse(unknown.body).error.message).toMatch(
      /workflow styled has no input 'mood'; its inputs are: seed, steps, checkpoint, width, height, prompt, style, negative_prompt$/,
    );
    const ok = await postJson(`${w.url}/v1/images`, { ...body, inputs: { style: "woodcut" } });
    expect(ok.status, ok.text).toBe(200);
    const sent = fixture.prompts.at(-1) as { prompt: Record<string, { inputs: Record<string, unknown> }> };
    expect(sent.prompt["6"]?.inputs.text).toBe("a bee, in the style of woodcut");
    expect(sent.prompt["5"]?.inputs.width).toBe(64); // a whole "{{width}}" becomes a number
  });

  it("out of memory during execution (execution_error) is a 503 insufficient_memory with ComfyUI's message", async () => {
    const w = await attach();
    const r = await postJson(`${w.url}/v1/images`, { ...body, width: 2048, height: 2048 });
    expect(r.status, r.text).toBe(503);
    const e = ErrorBody.parse(r.body).error;
    expect(e.code).toBe("insufficient_memory");
    expect(e.message).toMatch(
      /^ComfyUI ran out of memory in node 3 \(KSampler\) of prompt [0-9a-f-]+: Allocation on device 0 would exceed allowed memory\. \(out of memory\); ask for a smaller size or fewer images$/,
    );
    // streamed, the same failure is the stream's error event after its progress
    const s = await postSse(`${w.url}/v1/images`, { ...body, width: 2048, height: 2048, stream: true });
    expect(s.events.map((x) => x.event)).toContain("progress");
    expect(s.events.at(-1)).toMatchObject({ event: "error", data: { code: "insufficient_memory" } });
  });

  it("ComfyUI restarting mid-generation ends the request with an error, never a hang; the worker serves the next one", async () => {
    const w = await attach();
    const started = Date.now();
    const pending = postSse(`${w.url}/v1/images`, { ...body, steps: 200, stream: true });
    await waitFor(() => (fixture.clients > 0 && fixture.prompts.length > 0 ? true : undefined), 10_000);
    await new Promise((r) => setTimeout(r, 300));
    await fixture.restart();
    const s = await pending;
    expect(s.events.at(-1)).toMatchObject({ event: "error", data: { code: "engine_restarted" } });
    expect(String((s.events.at(-1)?.data as { message?: string } | undefined)?.message)).toMatch(
      /ComfyUI closed its websocket \(code \d+\) in the middle of the generation: it stopped or restarted/,
    );
    expect(Date.now() - started).toBeLessThan(60_000);
    const next = await postJson(`${w.url}/v1/images`, body);
    expect(next.status, next.text).toBe(200);
    expect(ImageResponse.parse(next.body).images).toHaveLength(1);
  });

  it("a client that goes away interrupts ComfyUI (POST /interrupt), so it does not go on generating for nobody", async () => {
    const w = await attach();
    const r = await postSse(
      `${w.url}/v1/images`,
      { ...body, steps: 200, stream: true },
      { onEvent: (e) => (e.event === "progress" && (e.data as { step?: number }).step === 3 ? "stop" : undefined) },
    );
    expect(r.disconnected).toBe(true);
    // the fixture's history shows the prompt ended early, interrupted
    const history = await waitFor(async () => {
      const h = (await (await fetch(`${fixture.url}/history`)).json()) as Record<
        string,
        { status: { messages: [string, unknown][] } }
      >;
      const last = Object.values(h).at(-1);
      return last?.status.messages.some(([type]) => type === "execution_interrupted") ? last : undefined;
    }, 10_000);
    expect(history.status.messages.map(([t]) => t)).toEqual([
      "execution_start",
      "execution_cached",
      "execution_interrupted",
    ]);
  });
});
