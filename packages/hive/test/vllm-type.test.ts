import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HiveWorkerTypes } from "@rbee/contract";
import {
  type HubServer,
  OPENAI_ENGINE_FIXTURE_SERVE,
  postJson,
  postSse,
  safetensorsRepoFiles,
  startHubServer,
  tinyTransformerParameters,
  waitFor,
} from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHive, type TestHive } from "./helpers/test-hive.js";

// The vllm worker type through a hive: the hive finds `vllm` on its PATH (here the vLLM API FIXTURE,
// run as a stand-in program: not the real vLLM), downloads the model's Hugging Face repo (safetensors
// + config.json) from the test hub with the resumable, sha256-checked downloader, and supervises the
// adapter, which starts `vllm serve <repo dir>`.
const REPO = "rbee-test/tiny-llama-safetensors";
let bin: string;
let hub: HubServer;
let t: TestHive;
beforeAll(async () => {
  bin = mkdtempSync(join(tmpdir(), "rbee-vllm-bin-"));
  writeFileSync(join(bin, "vllm"), `#!/bin/sh\nexec "${process.execPath}" "${OPENAI_ENGINE_FIXTURE_SERVE}" "$@"\n`);
  chmodSync(join(bin, "vllm"), 0o755);
  hub = await startHubServer({
    repos: {
      [REPO]: { files: safetensorsRepoFiles() },
      "rbee-test/no-weights": { files: { "config.json": { content: "{}" }, "model.bin": { content: "x" } } },
    },
  });
  t = await startTestHive({
    env: { PATH: bin, HF_ENDPOINT: hub.url, HF_HOME: join(bin, "no-hf-home") },
    restart: { backoffMs: 200 },
  });
}, 60_000);
afterAll(async () => {
  await t?.close();
  await hub?.close();
  rmSync(bin, { recursive: true, force: true });
});

describe("hive: the vllm type (vLLM API fixture as the engine, test hub as Hugging Face)", () => {
  it("is Available with the vllm found on PATH, loading hf-repo models", async () => {
    const types = HiveWorkerTypes.parse((await t.api.get("/v1/worker-types?refresh=1")).body).worker_types;
    const vllm = types.find((w) => w.id === "vllm");
    expect(vllm).toMatchObject({ status: "Available", artifact: "hf-repo" });
    expect(vllm?.engines[0]).toMatchObject({ id: "vllm", path: join(bin, "vllm"), version: "0.10.1", status: "ok" });
  });

  it("a spawn downloads the repo (sha256 checked), and serves it through vllm serve <repo dir>", async () => {
    const r = await t.api.post("/v1/workers", { worker_type: "vllm", model: REPO, worker_id: "vllm-1" });
    expect(r.status, r.text).toBe(201);
    const id = "rbee-test--tiny-llama-safetensors";
    expect(r.body).toMatchObject({ worker_type: "vllm", model: id });
    const dir = join(t.cacheDir, "models", id);
    // the engine's files, not the ones it does not read
    for (const f of [
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
      "generation_config.json",
    ])
      expect(existsSync(join(dir, f)), f).toBe(true);
    expect(existsSync(join(dir, "README.md"))).toBe(false);
    expect(existsSync(join(dir, "original"))).toBe(false);
    const meta = JSON.parse(readFileSync(join(dir, "metadata.json"), "utf8"));
    const safetensors = meta.artifact.files.find((f: { path: string }) => f.path === "model.safetensors");
    expect(safetensors.sha256).toBe(hub.sha256(REPO, "model.safetensors"));
    expect(meta.artifact).toMatchObject({
      format: "hf-repo",
      status: "Available",
      hf_config: {
        architecture: "LlamaForCausalLM",
        parameters: tinyTransformerParameters(),
        dtype: "bfloat16",
        dtype_bytes: 2,
        layers: 2,
        kv_heads: 2,
        head_dim: 16,
        context_length: 2048,
      },
    });
    const log = readFileSync(join(t.cacheDir, "logs", "workers", "vllm-1.log"), "utf8");
    // vllm serve got the repo's directory, and tensor parallel 1 for the one device
    const args = log.split("\n").find((l) => l.includes("non-default args"));
    expect(args).toContain(dir);
    expect(args).toContain('tensor-parallel-size\\":\\"1');
    const reply = await postJson(
      `${r.body.url}/v1/infer`,
      { prompt: "Once upon a time", max_tokens: 3, model: id },
      { token: t.hive.token },
    );
    expect(reply.status, reply.text).toBe(200);
    expect(reply.body.text).toBe(", there was");
  });

  it("vLLM crashing mid-stream: the request ends with an error, and the hive restarts the worker", async () => {
    const worker = async () =>
      ((await t.api.get("/v1/workers")).body.workers as { worker_id: string }[]).find(
        (w) => w.worker_id === "vllm-1",
      ) as { url: string; pid: number; status: string; restarts: number } | undefined;
    const before = await worker();
    if (before === undefined) throw new Error("no worker vllm-1");
    const stream = await postSse(
      `${before.url}/v1/infer`,
      { prompt: "CUT-STREAM now", max_tokens: 20, stream: true },
      { token: t.hive.token },
    );
    expect(stream.events.at(-1)?.event).toBe("error");
    const after = await waitFor(
      async () => {
        const w = await worker();
        return w?.status === "Ready" && w.pid !== before.pid && w.restarts >= 1 ? w : undefined;
      },
      60_000,
      "the hive to restart the vllm worker",
    );
    const reply = await postJson(
      `${after.url}/v1/infer`,
      { prompt: "Once upon a time", max_tokens: 2 },
      { token: t.hive.token },
    );
    expect(reply.status, reply.text).toBe(200);
    expect((await t.api.delete("/v1/workers/vllm-1")).status).toBe(200);
  });

  it("a GGUF type refuses the repo, and the vllm type refuses a repo without safetensors, saying why", async () => {
    const gguf = await t.api.post("/v1/workers", {
      worker_type: "vllm",
      model: "ggml-org/models:tinyllamas/stories260K.gguf",
    });
    expect(gguf.status, gguf.text).toBe(400);
    expect(gguf.body.error.message).toMatch(/does not name a Hugging Face repo: .*owner\/repo/);
    const none = await t.api.post("/v1/workers", { worker_type: "vllm", model: "rbee-test/no-weights" });
    expect(none.status, none.text).toBe(400);
    expect(none.body.error.message).toMatch(/rbee-test\/no-weights has no \.safetensors weights at its root/);
  });
});
