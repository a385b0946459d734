import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  cachedGeneratedModel,
  type HubServer,
  STORIES_GREEDY_PREFIX,
  STORIES_MODEL,
  startHubServer,
  startRbee,
  waitFor,
} from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLine, pidFromFile, type Sandbox, sandbox } from "./helpers.js";

const STORIES_REF = "ggml-org/models:tinyllamas/stories260K.gguf";
const MiB = 1024 * 1024;

// Models from a Hugging Face Hub: the hub here is the test fixture that replays the Hub's HTTP
// protocol (packages/testing/src/hub-server), pointed at with HF_ENDPOINT like a mirror would be.
describe("rbee model: download, list, info, remove through the CLI (test hub fixture)", () => {
  let hub: HubServer;
  let sb: Sandbox;
  let bigPath: string;
  let bigSize: number;

  beforeAll(async () => {
    const big = await cachedGeneratedModel(24 * MiB);
    bigPath = big.path;
    bigSize = statSync(bigPath).size;
    hub = await startHubServer({
      token: "hf_test_token",
      repos: {
        "ggml-org/models": { files: { "tinyllamas/stories260K.gguf": { path: STORIES_MODEL } } },
        "rbee-test/big-GGUF": {
          files: {
            "big-F16.gguf": { path: bigPath },
            "big-Q8_0.gguf": { path: bigPath },
            "README.md": { content: "# a test repo\n" },
          },
        },
        "rbee-test/gated": { gated: true, files: { "stories.gguf": { path: STORIES_MODEL } } },
      },
    });
    sb = await sandbox();
    sb.env.HF_ENDPOINT = hub.url;
    sb.env.HF_TOKEN = "";
    sb.env.HF_HOME = join(sb.cacheDir, "no-hf-home");
    const up = await sb.rbee(["up"]);
    expect(up.code, up.stderr).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await sb?.dispose();
    await hub?.close();
  });

  it("model info reads only the GGUF header, over the network", async () => {
    hub.stats.reset();
    const r = await sb.rbee(["model", "info", STORIES_REF, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.gguf.architecture).toBe("llama");
    expect(info.source).toBe("huggingface");
    expect(info.bytes_fetched).toBeGreaterThan(0);
    expect(info.estimate.total).toBeGreaterThan(info.gguf.file_bytes);
    const served = hub.stats.bytesServed("ggml-org/models/tinyllamas/stories260K.gguf");
    expect(served).toBe(info.bytes_fetched);
    expect(served).toBeLessThan(statSync(STORIES_MODEL).size);
  });

  it("downloads a model, lists it, infers with it without fetching it again, and removes it", async () => {
    hub.stats.reset();
    const dl = await sb.rbee(["model", "download", STORIES_REF]);
    expect(dl.code, dl.stderr).toBe(0);
    const id = dl.stdout.trim();
    expect(id).toMatch(/^[a-z0-9._-]+$/);
    expect(dl.stderr).toMatch(/sha256 checked/);
    // the file once, plus the header the queen read first to plan where the model fits
    const size = statSync(STORIES_MODEL).size;
    const served = hub.stats.bytesServed("ggml-org/models/tinyllamas/stories260K.gguf");
    expect(served).toBeGreaterThanOrEqual(size);
    expect(served).toBeLessThanOrEqual(size + 1024 * 1024);
    const ls = await sb.rbee(["model", "ls", "--json"]);
    const entry = JSON.parse(ls.stdout).find((m: { id: string }) => m.id === id);
    expect(entry).toMatchObject({ status: "Available", size_bytes: statSync(STORIES_MODEL).size });
    expect(entry.gguf.quantization).toBeTruthy();
    const infer = await sb.rbee([
      "infer",
      "-m",
      STORIES_REF,
      "-p",
      "Once upon a time",
      "--max-tokens",
      "20",
      "--temperature",
      "0",
    ]);
    expect(infer.code, infer.stderr).toBe(0);
    expect(infer.stdout.startsWith(STORIES_GREEDY_PREFIX)).toBe(true);
    expect(hub.stats.bytesServed("ggml-org/models/tinyllamas/stories260K.gguf")).toBe(served); // nothing fetched again
    // a worker serves it: removing is refused until the worker is stopped
    const busy = await sb.rbee(["model", "rm", id, "-q"]);
    expect(busy.code).not.toBe(0);
    expect(expectOneLine(busy.stderr)).toMatch(/in use by worker/);
    const workers = JSON.parse((await sb.rbee(["worker", "ls", "--json"])).stdout) as Array<{
      worker_id: string;
      model: string;
    }>;
    for (const w of workers.filter((w) => w.model === id))
      expect((await sb.rbee(["worker", "stop", w.worker_id])).code).toBe(0);
    const rm = await sb.rbee(["model", "rm", id]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(readdirSync(join(sb.cacheDir, "models"))).not.toContain(id);
  });

  it("a repo without a file named: the hive picks the preferred quantization and says why", async () => {
    const dl = await sb.rbee(["model", "download", "rbee-test/big-GGUF", "--json"]);
    expect(dl.code, dl.stderr).toBe(0);
    expect(dl.stderr).toMatch(/picked big-Q8_0\.gguf/);
    expect(JSON.parse(dl.stdout).status).toBe("Available");
  });

  it("rbee infer downloads a model on first use, with progress lines, then answers", async () => {
    await sb.rbee(["model", "rm", "rbee-test--big-gguf--big-q8_0", "-q"]);
    hub.faults.bytesPerSecond = 8 * MiB; // slow enough for a few progress lines
    try {
      const r = await sb.rbee(["infer", "-m", "rbee-test/big-GGUF:big-Q8_0.gguf", "-p", "Once", "--max-tokens", "4"]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/download: \d+% \([\d.]+ MiB of [\d.]+ MiB/);
      expect(r.stderr).toMatch(/sha256 checked/);
      expect(r.stderr).toMatch(/spawning llm worker/);
    } finally {
      hub.faults.bytesPerSecond = undefined;
    }
  });

  it("resumes a download whose connection dropped, fetching each byte about once", async () => {
    await sb.rbee(["model", "rm", "rbee-test--big-gguf--big-f16"]).catch(() => undefined);
    hub.stats.reset();
    hub.faults.dropAfterBytes = Math.floor(bigSize * 0.4);
    hub.faults.dropOnce = true;
    const dl = await sb.rbee(["model", "download", "rbee-test/big-GGUF:big-F16.gguf"]);
    expect(dl.code, dl.stderr).toBe(0);
    const served = hub.stats.bytesServed("rbee-test/big-GGUF/big-F16.gguf");
    expect(served).toBeGreaterThanOrEqual(bigSize);
    expect(served).toBeLessThan(bigSize * 1.3);
  });

  it("resumes after the hive is killed mid-download: the second run fetches only what was missing (plus at most a part)", async () => {
    const ref = "rbee-test/big-GGUF:big-F16.gguf";
    const list = JSON.parse((await sb.rbee(["model", "ls", "--json"])).stdout) as Array<{
      id: string;
      source_url?: string;
    }>;
    for (const m of list.filter((m) => m.id.includes("big-f16"))) await sb.rbee(["model", "rm", m.id]);
    hub.stats.reset();
    hub.faults.bytesPerSecond = 4 * MiB;
    const first = startRbee(["model", "download", ref], { env: sb.env });
    await waitFor(
      () => (hub.stats.bytesServed("rbee-test/big-GGUF/big-F16.gguf") > bigSize * 0.4 ? true : undefined),
      30_000,
      "40 % downloaded",
    );
    const hivePid = pidFromFile(sb.cacheDir, "hive");
    expect(hivePid).toBeGreaterThan(0);
    process.kill(hivePid as number, "SIGKILL");
    const exit = await first.waitForExit(30_000);
    expect(exit.code).not.toBe(0);
    const servedFirst = hub.stats.bytesServed("rbee-test/big-GGUF/big-F16.gguf");
    hub.faults.bytesPerSecond = undefined;
    expect((await sb.rbee(["hive", "start"])).code).toBe(0);
    hub.stats.reset();
    const second = await sb.rbee(["model", "download", ref]);
    expect(second.code, second.stderr).toBe(0);
    const servedSecond = hub.stats.bytesServed("rbee-test/big-GGUF/big-F16.gguf");
    const part = bigSize / 4;
    expect(servedSecond).toBeLessThanOrEqual(bigSize - servedFirst + part);
  });

  it("a file whose sha256 does not match is caught, deleted and reported", async () => {
    const listed = JSON.parse((await sb.rbee(["model", "ls", "--json"])).stdout) as Array<{ id: string }>;
    for (const m of listed.filter((m) => m.id.includes("stories260k"))) await sb.rbee(["model", "rm", m.id, "-q"]);
    hub.faults.wrongSha256 = true;
    try {
      const r = await sb.rbee(["model", "download", "ggml-org/models:tinyllamas/stories260K.gguf", "-q"]);
      expect(r.code).not.toBe(0);
      expect(expectOneLine(r.stderr)).toMatch(/sha256/);
      const tmp = join(sb.cacheDir, "tmp");
      expect(readdirSync(tmp).filter((f) => f.includes("stories260k"))).toEqual([]);
    } finally {
      hub.faults.wrongSha256 = false;
    }
  });

  it("a gated repo without a token is refused with what to do", async () => {
    const r = await sb.rbee(["model", "download", "rbee-test/gated:stories.gguf", "-q"]);
    expect(r.code).not.toBe(0);
    expect(expectOneLine(r.stderr)).toMatch(/HF_TOKEN/);
  });

  it("a reference that tries to leave the repo or the cache is refused", async () => {
    for (const ref of ["ggml-org/models:../../etc/passwd", "../../etc/x"]) {
      const r = await sb.rbee(["model", "download", ref, "-q"]);
      expect(r.code, ref).not.toBe(0);
      expectOneLine(r.stderr);
    }
  });

  it("a broken metadata.json is listed as broken and the hive keeps working", async () => {
    const dir = join(sb.cacheDir, "models", "broken-one");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "metadata.json"), '{"artifact": {"id": "broken-one", "na');
    await waitFor(async () => {
      const ls = JSON.parse((await sb.rbee(["model", "ls", "--json"])).stdout) as Array<{
        id: string;
        status: string;
        error?: string;
      }>;
      const broken = ls.find((m) => m.id === "broken-one");
      return broken?.status === "Failed" && /metadata/.test(broken.error ?? "") ? true : undefined;
    }, 15_000);
    const info = await sb.rbee(["model", "info", STORIES_REF, "--json"]);
    expect(info.code, info.stderr).toBe(0);
  });
});
