import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ErrorBody } from "@rbee/contract";
import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import {
  ComfyUiFixture,
  getJson,
  pngSize,
  postJson,
  quietLog,
  runJob,
  runRbee,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Images through the queen, with a real queen, a real hive and real workers: the hive's workers of
 * type comfyui attach to the ComfyUI API FIXTURE (a replay of ComfyUI's protocol, not ComfyUI), and
 * an `echo` worker stands for a text model. The official `openai` client is the test of the route.
 */
describe("queen: POST /v1/images/generations through a comfyui worker (ComfyUI API fixture)", () => {
  const dirs = tempRbeeDirs("queen-images");
  let fixture: ComfyUiFixture;
  let queen: Queen;
  let hive: Hive;
  const cli = (args: string[]) =>
    runRbee([...args, "--no-autostart"], {
      env: { ...dirs.env, RBEE_QUEEN_URL: queen.url, RBEE_API_KEY: "" },
      timeoutMs: 60_000,
    });
  const openai = () => new OpenAI({ baseURL: `${queen.url}/v1`, apiKey: "none", maxRetries: 0, timeout: 120_000 });

  beforeAll(async () => {
    fixture = await new ComfyUiFixture({ checkpoints: ["Fixture-SD15.safetensors", "other.ckpt"] }).start();
    // the hive's workers inherit its process's environment: that is where they find ComfyUI
    process.env.RBEE_COMFYUI_URL = fixture.url;
    queen = await startQueen({
      log: quietLog("queen"),
      port: 0,
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 1000,
      sweepIntervalMs: 200,
    });
    hive = await startHive({
      log: quietLog("hive"),
      port: 0,
      queenUrl: queen.url,
      hiveId: "images-hive",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 1000,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
      env: { ...process.env, RBEE_DEVICES: "[]" },
    });
    await waitFor(() => (queen.registry.hives.get("images-hive")?.workerTypes ? true : undefined), 30_000);
    // a text model: an echo worker serving "parrot"
    const spawned = await runJob(queen.url, { type: "spawn_worker", model: "parrot", worker_type: "echo" });
    expect(spawned.error, JSON.stringify(spawned.error)).toBeUndefined();
  }, 90_000);
  afterAll(async () => {
    await hive?.close();
    await queen?.close();
    await fixture?.stop();
    delete process.env.RBEE_COMFYUI_URL;
  }, 60_000);

  it("the openai client's images.generate places a comfyui worker for the model and gets a PNG (b64_json)", async () => {
    const res = await openai().images.generate({
      model: "fixture-sd15",
      prompt: "a bee on a sunflower",
      size: "256x128",
      response_format: "b64_json",
      // rbee's extension, passed through the client unmodified
      seed: 1234,
    } as OpenAI.ImageGenerateParamsNonStreaming);
    expect(res.data).toHaveLength(1);
    const png = Buffer.from(res.data?.[0]?.b64_json ?? "", "base64");
    expect(pngSize(png)).toEqual({ width: 256, height: 128 });
    // the worker runs ComfyUI's workflow with the checkpoint ComfyUI has (found without regard to case)
    const queued = fixture.prompts.at(-1) as {
      prompt: Record<string, { class_type: string; inputs: Record<string, unknown> }>;
    };
    const nodes = Object.values(queued.prompt);
    expect(nodes.find((n) => n.class_type === "CheckpointLoaderSimple")?.inputs.ckpt_name).toBe(
      "Fixture-SD15.safetensors",
    );
    expect(nodes.find((n) => n.class_type === "KSampler")?.inputs.seed).toBe(1234);
    const workers = [...queen.registry.workers.values()].filter((w) => w.report.worker_type === "comfyui");
    expect(workers.map((w) => w.report.model)).toEqual(["fixture-sd15"]);
  });

  it("the same seed gives the same image, and n images come with seeds seed, seed+1, ...", async () => {
    const r = await postJson(`${queen.url}/v1/images/generations`, {
      model: "fixture-sd15",
      prompt: "a bee",
      size: "64x64",
      n: 2,
      seed: 5,
      response_format: "b64_json",
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.rbee.seeds).toEqual([5, 6]);
    const again = await postJson(`${queen.url}/v1/images/generations`, {
      model: "fixture-sd15",
      prompt: "a bee",
      size: "64x64",
      seed: 6,
      response_format: "b64_json",
    });
    expect(again.body.data[0].b64_json).toBe(r.body.data[1].b64_json);
    expect(r.body.data[0].b64_json).not.toBe(r.body.data[1].b64_json);
  });

  it("response_format url: the queen serves the image at a path of its own, behind its API keys", async () => {
    const res = await openai().images.generate({ model: "fixture-sd15", prompt: "a bee", size: "64x64", n: 1 });
    const url = res.data?.[0]?.url ?? "";
    expect(url).toMatch(new RegExp(`^${queen.url}/v1/images/files/[0-9a-f]{32}\\.png$`));
    const file = await fetch(url);
    expect(file.status).toBe(200);
    expect(file.headers.get("content-type")).toBe("image/png");
    expect(pngSize(Buffer.from(await file.arrayBuffer()))).toEqual({ width: 64, height: 64 });
    const missing = await getJson(`${queen.url}/v1/images/files/${"0".repeat(32)}.png`);
    expect(missing.status).toBe(404);
    expect(ErrorBody.parse(missing.body).error.message).toMatch(/kept for an hour/);
  });

  it("an image request to a text model is a 400 naming the models that generate images, and a text request to an image model a 400", async () => {
    const image = await postJson(`${queen.url}/v1/images/generations`, { model: "parrot", prompt: "a bee" });
    expect(image.status, image.text).toBe(400);
    const e = ErrorBody.parse(image.body).error;
    expect(e.code).toBe("model_not_image");
    expect(e.param).toBe("model");
    expect(e.message).toMatch(
      /'parrot' generates text, not images; the models that generate images here are: fixture-sd15/,
    );
    const err = await openai()
      .chat.completions.create({ model: "fixture-sd15", messages: [{ role: "user", content: "hi" }] })
      .catch((x: unknown) => x);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).message).toMatch(
      /'fixture-sd15' generates images, not text; send it to POST \/v1\/images\/generations/,
    );
  });

  it("bad values of known fields are 400s that name them", async () => {
    const bad = async (body: Record<string, unknown>, param: string, message: RegExp) => {
      const r = await postJson(`${queen.url}/v1/images/generations`, {
        model: "fixture-sd15",
        prompt: "a bee",
        ...body,
      });
      expect(r.status, r.text).toBe(400);
      const e = ErrorBody.parse(r.body).error;
      expect(e.param).toBe(param);
      expect(e.message).toMatch(message);
    };
    await bad({ size: "100x100" }, "size", /multiple of 8/);
    await bad({ size: "big" }, "size", /WIDTHxHEIGHT/);
    await bad({ n: 99 }, "n", /n/);
    await bad({ response_format: "gif" }, "response_format", /b64_json|url/);
    await bad({ output_format: "webp" }, "output_format", /PNG/);
    await bad({ prompt: "" }, "prompt", /empty/);
  });

  it("ComfyUI running out of memory ends the request with a 503 in ComfyUI's words; the worker serves the next one", async () => {
    const r = await postJson(`${queen.url}/v1/images/generations`, {
      model: "fixture-sd15",
      prompt: "a huge bee",
      size: "2048x2048",
      response_format: "b64_json",
    });
    expect(r.status, r.text).toBe(503);
    const e = ErrorBody.parse(r.body).error;
    expect(e.code).toBe("insufficient_memory");
    expect(e.message).toMatch(
      /ComfyUI ran out of memory in node 3 \(KSampler\).*Allocation on device 0 would exceed allowed memory/,
    );
    const next = await postJson(`${queen.url}/v1/images/generations`, {
      model: "fixture-sd15",
      prompt: "a small bee",
      size: "64x64",
      response_format: "b64_json",
    });
    expect(next.status, next.text).toBe(200);
    // no other worker was started for it: the request was too big, not the worker unusable
    expect([...queen.registry.workers.values()].filter((w) => w.report.worker_type === "comfyui")).toHaveLength(1);
  });

  it("an image job narrates the generation and reports progress in steps", async () => {
    const job = await runJob(queen.url, {
      type: "image",
      model: "fixture-sd15",
      prompt: "a bee",
      width: 64,
      height: 64,
      steps: 8,
    });
    expect(job.error, JSON.stringify(job.error)).toBeUndefined();
    const progress = job.events.filter((e) => e.type === "progress");
    expect(progress.at(-1)).toMatchObject({ done: 8, total: 8, unit: "steps" });
    const narration = job.events.filter((e) => e.type === "narration").map((e) => (e as { message: string }).message);
    expect(narration).toContain("image: KSampler");
    const result = job.result as { images: { data: string }[]; worker_id: string };
    expect(pngSize(Buffer.from(result.images[0]?.data ?? "", "base64"))).toEqual({ width: 64, height: 64 });
  });

  it("`rbee image` saves the PNG and narrates the progress as plain lines when stderr is not a terminal", async () => {
    const out = join(dirs.cacheDir, "bee.png");
    const run = await cli([
      "image",
      "-m",
      "fixture-sd15",
      "-p",
      "a bee",
      "-o",
      out,
      "--size",
      "128x64",
      "--steps",
      "10",
      "--seed",
      "3",
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe("");
    expect(pngSize(readFileSync(out))).toEqual({ width: 128, height: 64 });
    expect(run.stderr).toMatch(/^worker comfyui-\S+: image: KSampler$/m);
    expect(run.stderr).toMatch(/^generating: 100% \(10 steps of 10 steps\)$/m);
    expect(run.stderr).toMatch(new RegExp(`^saved ${out} \\(128x64, seed 3\\)$`, "m"));
    // several images: bee-1.png, bee-2.png; --json prints what was saved
    const two = await cli([
      "image",
      "-m",
      "fixture-sd15",
      "-p",
      "a bee",
      "-o",
      out,
      "-n",
      "2",
      "--size",
      "64x64",
      "--json",
    ]);
    expect(two.code, two.stderr).toBe(0);
    const printed = JSON.parse(two.stdout) as { files: { path: string }[] };
    expect(printed.files.map((f) => f.path)).toEqual([
      join(dirs.cacheDir, "bee-1.png"),
      join(dirs.cacheDir, "bee-2.png"),
    ]);
    // a size that is not one: a usage error before anything runs
    const bad = await cli(["image", "-m", "fixture-sd15", "-p", "a bee", "--size", "100x100"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/multiple of 8/);
  });

  it("the heartbeat carries the engine's state: the workflow, its progress while it runs, and ComfyUI's memory", async () => {
    const worker = [...queen.registry.workers.values()].find((w) => w.report.worker_type === "comfyui");
    const hb = await waitFor(() => {
      const h = worker?.report.heartbeat;
      return h?.current_workflow === "text-to-image" && h.vram_used > 0 ? h : undefined;
    }, 15_000);
    expect(hb.loaded_models).toEqual(["Fixture-SD15.safetensors"]);
    expect(hb.workflow_progress).toBeNull();
    // while a long generation runs (4 images of 200 steps), the heartbeat shows where it is
    const running = postJson(`${queen.url}/v1/images/generations`, {
      model: "fixture-sd15",
      prompt: "a slow bee",
      size: "64x64",
      n: 4,
      steps: 200,
      response_format: "b64_json",
    });
    const during = await waitFor(() => {
      const p = worker?.report.heartbeat?.workflow_progress;
      return p && p.progress > 0 ? p : undefined;
    }, 15_000);
    expect(during.prompt_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(during.current_node).toBe("3");
    expect((await running).status).toBe(200);
    // the fixture reports 8 GiB of device memory and a loaded checkpoint of about 2 GiB
    expect(hb.vram_total).toBe(8 * 1024 ** 3);
    expect(hb.vram_used).toBe(2_132_625_894);
  });
});
