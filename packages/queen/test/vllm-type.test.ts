import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Hive, startHive } from "@rbee/hive";
import { type Queen, startQueen } from "@rbee/queen";
import {
  getJson,
  type HubServer,
  OPENAI_ENGINE_FIXTURE_SERVE,
  postJson,
  quietLog,
  runRbee,
  safetensorsRepoFiles,
  startHubServer,
  tempRbeeDirs,
  waitFor,
} from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The vllm worker type through a real queen, a real hive and the CLI, with the vLLM API FIXTURE as
 * the hive's `vllm` (a stand-in program, not the real vLLM) and the test hub as Hugging Face:
 * `rbee worker spawn --type vllm` on a safetensors repo, requests routed to it, the type chosen from
 * the model's format when a request names none, and a type no hive has refused with why.
 */
const REPO = "rbee-test/tiny-llama-safetensors";
const MODEL = "rbee-test--tiny-llama-safetensors";

describe("queen: the vllm type (vLLM API fixture, test hub)", () => {
  const dirs = tempRbeeDirs("queen-vllm");
  let bin: string;
  let hub: HubServer;
  let queen: Queen;
  let hive: Hive;
  const cli = (args: string[]) =>
    runRbee(args, { env: { ...dirs.env, RBEE_QUEEN_URL: queen.url, RBEE_API_KEY: "" }, timeoutMs: 90_000 });

  beforeAll(async () => {
    bin = mkdtempSync(join(tmpdir(), "rbee-vllm-bin-"));
    writeFileSync(join(bin, "vllm"), `#!/bin/sh\nexec "${process.execPath}" "${OPENAI_ENGINE_FIXTURE_SERVE}" "$@"\n`);
    chmodSync(join(bin, "vllm"), 0o755);
    // the fixture's tokens come 20 ms apart (workers get the hive process's environment)
    process.env.RBEE_FIXTURE_DELAY_MS = "20";
    hub = await startHubServer({ repos: { [REPO]: { files: safetensorsRepoFiles() } } });
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
      hiveId: "vllm-hive",
      configDir: dirs.configDir,
      cacheDir: dirs.cacheDir,
      heartbeatIntervalMs: 1000,
      workerPortStart: 20_000 + Math.floor(Math.random() * 30_000),
      env: {
        ...process.env,
        PATH: `${bin}:${process.env.PATH ?? ""}`,
        HF_ENDPOINT: hub.url,
        HF_HOME: join(bin, "no-hf-home"),
        RBEE_DEVICES: "[]",
      },
    });
    await waitFor(
      () =>
        queen.registry.hives.get("vllm-hive")?.workerTypes?.find((t) => t.id === "vllm")?.status === "Available" ||
        undefined,
      30_000,
      "the hive to report the vllm type Available",
    );
  }, 90_000);
  afterAll(async () => {
    await hive?.close();
    await queen?.close();
    await hub?.close();
    rmSync(bin, { recursive: true, force: true });
    delete process.env.RBEE_FIXTURE_DELAY_MS;
  }, 60_000);

  it("`rbee worker spawn --type vllm -m owner/repo` fetches the repo on the hive and starts a vllm worker; requests reach it", async () => {
    const out = await cli(["worker", "spawn", "-m", REPO, "--type", "vllm", "--json", "-q"]);
    expect(out.code, out.stderr).toBe(0);
    // the queen learns the worker's state from heartbeats: wait for one that says Ready
    const worker = await waitFor(
      () => [...queen.registry.workers.values()].find((w) => w.report.model === MODEL && w.report.status === "Ready"),
      30_000,
      "the vllm worker Ready in the queen's registry",
    );
    expect(worker.report.worker_type).toBe("vllm");
    const r = await postJson(`${queen.url}/v1/chat/completions`, {
      model: MODEL,
      messages: [{ role: "user", content: "Once upon a time" }],
      max_tokens: 3,
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.choices[0].message.content).toBe(", there was");
    const stop = await cli(["worker", "stop", worker.report.worker_id]);
    expect(stop.code, stop.stderr).toBe(0);
    await waitFor(
      () => ([...queen.registry.workers.values()].some((w) => w.report.model === MODEL) ? undefined : true),
      30_000,
    );
  });

  it("a request that names only the model gets a vllm worker: the hive holds it as a Hugging Face repo", async () => {
    const r = await postJson(`${queen.url}/v1/completions`, {
      model: MODEL,
      prompt: "Once upon a time",
      max_tokens: 2,
    });
    expect(r.status, r.text).toBe(200);
    expect(r.body.choices[0].text).toBe(", there");
    const worker = [...queen.registry.workers.values()].find((w) => w.report.model === MODEL);
    expect(worker?.report.worker_type).toBe("vllm");
  });

  it("n = 2 where one choice fails: the request fails with that choice's error and the other is not run", async () => {
    const worker = [...queen.registry.workers.values()].find((w) => w.report.model === MODEL);
    expect(worker).toBeDefined();
    const counts = async () => {
      const m = await getJson(`${worker?.report.url}/metrics`, queen.clusterToken);
      const count = (outcome: string) =>
        Number(new RegExp(`^rbee_worker_requests_total\\{outcome="${outcome}"\\} (\\d+)$`, "m").exec(m.text)?.[1] ?? 0);
      return { length: count("length"), error: count("error") };
    };
    const before = await counts();
    // seeds 7 and 8: the fixture fails the request whose seed is 7 (choice 0) mid-stream; the worker has
    // one slot, so choice 1 (20 tokens, 20 ms apart) waits for it and is to be cancelled by the failure
    const body = { model: MODEL, prompt: "MID-STREAM-ERROR-SEED-7 Once upon a time", max_tokens: 20, n: 2, seed: 7 };
    const r = await postJson(`${queen.url}/v1/completions`, body);
    expect(r.status, r.text).toBeGreaterThanOrEqual(500);
    expect(r.text).toContain("FIXTURE: MID-STREAM-ERROR");
    expect(r.text).not.toMatch(/cancel/i);
    // longer than choice 1 would take: it never ran
    await new Promise((res) => setTimeout(res, 1500));
    expect(await counts()).toEqual({ length: before.length, error: before.error + 1 });
    // streamed, with the failing seed as choice 1: the error event names the engine's failure
    const streamed = await fetch(`${queen.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, seed: 6, stream: true }),
    });
    const text = await streamed.text();
    expect(text).toContain("FIXTURE: MID-STREAM-ERROR");
    expect(text).not.toMatch(/cancel/i);
    // the worker is still there and serves both choices of a request that does not fail
    const ok = await postJson(`${queen.url}/v1/completions`, { ...body, prompt: "Once upon a time", max_tokens: 3 });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.choices).toHaveLength(2);
  });

  it("a type no hive has installed is refused saying, per hive, why", async () => {
    const out = await cli(["worker", "spawn", "-m", REPO, "--type", "trtllm"]);
    expect(out.code).not.toBe(0);
    expect(out.stderr).toMatch(
      /no connected hive can run worker type 'trtllm' \(hive vllm-hive: trtllm-serve was not found on this machine/,
    );
  });
});
