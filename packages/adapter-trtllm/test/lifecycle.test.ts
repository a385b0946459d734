import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OPENAI_ENGINE_FIXTURE_SERVE, postJson, startRbee, startWorker } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// Start mode: the adapter runs `trtllm-serve` itself; the TensorRT-LLM API FIXTURE, run as a
// program, stands in for it (trtllm-serve's flags, its "non-default args" log line, its failures).
let dir: string;
let standIn: string;
let repo: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rbee-trtllm-lifecycle-"));
  standIn = join(dir, "trtllm-serve");
  writeFileSync(standIn, `#!/bin/sh\nexec "${process.execPath}" "${OPENAI_ENGINE_FIXTURE_SERVE}" "$@"\n`);
  chmodSync(standIn, 0o755);
  repo = join(dir, "tiny-llama");
  mkdirSync(repo);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TWO_GPUS = JSON.stringify([
  { id: "cuda:0", name: "H100 (simulated)", memory_total: 80 * 2 ** 30 },
  { id: "cuda:1", name: "H100 (simulated)", memory_total: 80 * 2 ** 30 },
]);

describe("trtllm adapter, start mode, on the TensorRT-LLM API fixture as a stand-in trtllm-serve", () => {
  it("starts trtllm-serve <repo dir> with --tp_size from the devices (simulated GPUs) and serves the directory's name", async () => {
    const w = await startWorker("trtllm", ["--engine", standIn, "--device", "cuda:0,cuda:1", "--parallel", "3"], {
      model: repo,
      env: { RBEE_DEVICES: TWO_GPUS },
    });
    try {
      const args = /non-default args: (\{.*?\})(?:\\n|")/.exec(w.child.stdout)?.[1]?.replaceAll('\\"', '"');
      expect(JSON.parse(args ?? "{}")).toMatchObject({
        model: repo,
        tp_size: "2",
        backend: "pytorch",
        max_batch_size: "3",
      });
      expect(w.child.stdout).toMatch(/"msg":"trtllm serving"/);
      const r = await postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 3 });
      expect(r.status, r.text).toBe(200);
      expect(r.body.text).toBe(", there was");
    } finally {
      await w.child.stop();
    }
  });

  it("out of memory at start: the worker exits 1 with TensorRT-LLM's words", async () => {
    const huge = join(dir, "huge-405b");
    mkdirSync(huge, { recursive: true });
    const child = startRbee(["worker", "serve", "trtllm", "--model", huge, "--port", "0", "--engine", standIn]);
    const exit = await child.waitForExit(60_000);
    expect(exit.code).toBe(1);
    expect(child.stderr).toMatch(
      /trtllm could not load 'huge-405b': RuntimeError: \[TensorRT-LLM\]\[ERROR\] CUDA runtime error in cudaMalloc: out of memory/,
    );
  });
});
