import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isPidAlive } from "@rbee/server-kit";
import {
  type ChildHandle,
  OPENAI_ENGINE_FIXTURE_SERVE,
  postJson,
  postSse,
  startRbee,
  startWorker,
  waitFor,
} from "@rbee/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

// Start mode: the adapter runs `vllm serve` itself. The vLLM API FIXTURE, run as a program, stands
// in for the real `vllm` (it takes vLLM's flags, logs its "non-default args" as vLLM does, and fails
// or dies as vLLM does: CUDA out of memory at start for a model named "huge", a crash mid-stream).
let dir: string;
let standIn: string;
let repo: string;
const children: ChildHandle[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rbee-vllm-lifecycle-"));
  standIn = join(dir, "vllm");
  writeFileSync(standIn, `#!/bin/sh\nexec "${process.execPath}" "${OPENAI_ENGINE_FIXTURE_SERVE}" "$@"\n`);
  chmodSync(standIn, 0o755);
  repo = join(dir, "tiny-llama");
  mkdirSync(repo);
  writeFileSync(join(repo, "config.json"), "{}");
});
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop(2000)));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const gone = (pid: number) => waitFor(() => (isPidAlive(pid) ? undefined : true), 10_000, `process ${pid} to be gone`);
// two simulated GPUs, declared (this machine has none)
const TWO_GPUS = JSON.stringify([
  { id: "cuda:0", name: "RTX 4090 (simulated)", memory_total: 24 * 2 ** 30 },
  { id: "cuda:1", name: "RTX 4090 (simulated)", memory_total: 24 * 2 ** 30 },
]);

describe("vllm adapter, start mode, on the vLLM API fixture as a stand-in `vllm serve`", () => {
  it("starts vllm serve with --tensor-parallel-size from the devices given (simulated GPUs); SIGKILL to the adapter leaves no engine", async () => {
    const w = await startWorker("vllm", ["--engine", standIn, "--device", "cuda:0,cuda:1", "--engine-guard=setpriv"], {
      model: repo,
      env: { RBEE_DEVICES: TWO_GPUS },
    });
    children.push(w.child);
    const m = await w.child.waitForLine(/^\{.*"msg":"vllm serving".*\}$/m);
    const line = JSON.parse(m[0]) as { engine_pid: number; mode: string; version: string };
    expect(line).toMatchObject({ mode: "start", version: "0.10.1" });
    expect(w.model).toBe("tiny-llama");
    const args = /non-default args: (\{.*?\})(?:\\n|")/.exec(w.child.stdout)?.[1]?.replaceAll('\\"', '"');
    expect(JSON.parse(args ?? "{}")).toMatchObject({
      model: repo,
      "served-model-name": "tiny-llama",
      "tensor-parallel-size": "2",
      host: "127.0.0.1",
    });
    const r = await postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 3 });
    expect(r.status, r.text).toBe(200);
    expect(r.body.text).toBe(", there was");
    w.child.kill("SIGKILL");
    await w.child.waitForExit();
    await gone(line.engine_pid);
  });

  it("out of memory at start: the worker exits 1 with vLLM's words, as insufficient memory", async () => {
    const huge = join(dir, "huge-70b");
    mkdirSync(huge, { recursive: true });
    const child = startRbee(["worker", "serve", "vllm", "--model", huge, "--port", "0", "--engine", standIn]);
    children.push(child);
    const exit = await child.waitForExit(60_000);
    expect(exit.code).toBe(1);
    expect(child.stderr).toMatch(
      /vllm could not load 'huge-70b': torch\.OutOfMemoryError: CUDA out of memory\. Tried to allocate 2\.00 GiB/,
    );
  });

  it("vLLM crashing mid-stream ends the stream with an error (never a hang), and the worker exits 1 for its hive to restart it", async () => {
    const w = await startWorker("vllm", ["--engine", standIn], { model: repo });
    children.push(w.child);
    const r = await postSse(`${w.url}/v1/infer`, { prompt: "CUT-STREAM now", max_tokens: 20, stream: true });
    expect(r.events.at(-1)?.event).toBe("error");
    const exit = await w.child.waitForExit(30_000);
    expect(exit.code).toBe(1);
    expect(w.child.stdout + w.child.stderr).toMatch(/the engine vllm .* exited with code 1 while serving/);
  });

  it("a missing vllm program is refused before anything starts, saying how to install it", async () => {
    const child = startRbee([
      "worker",
      "serve",
      "vllm",
      "--model",
      repo,
      "--port",
      "0",
      "--engine",
      join(dir, "no-vllm"),
    ]);
    children.push(child);
    const exit = await child.waitForExit(30_000);
    expect(exit.code).toBe(1);
    expect(child.stderr).toMatch(/cannot run the engine .*no-vllm: no such file; install vLLM \(`pip install vllm`/);
  });
});
