import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isPidAlive } from "@rbee/server-kit";
import {
  type ChildHandle,
  cachedGeneratedModel,
  getJson,
  postJson,
  postSse,
  requireLlamaServerOrSkip,
  requireStoriesModel,
  type StartedWorker,
  startLlamaServerWorker,
  startRbee,
  waitFor,
} from "@rbee/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { serving } from "./helpers.js";

// The adapter's life with its engine, on the real llama-server: no engine outlives the adapter (even
// on SIGKILL, through either guard), an engine that dies takes its adapter down with a non-zero exit,
// and engines that cannot start are reported with their path and log, leaving no process behind.
const LLAMA_SERVER = requireLlamaServerOrSkip();
const MiB = 1024 * 1024;

/** The engine's pid from the adapter's "started" line, for engines that never get to serve. */
function startedPid(child: ChildHandle): number | undefined {
  const m = /^\{.*"msg":"llama-server started".*\}$/m.exec(child.stdout);
  return m ? (JSON.parse(m[0]) as { engine_pid: number }).engine_pid : undefined;
}

const gone = (pid: number) => waitFor(() => (isPidAlive(pid) ? undefined : true), 10_000, `process ${pid} to be gone`);

const children: ChildHandle[] = [];
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rbee-llama-server-lifecycle-"));
});
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop(2000)));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(args: string[] = []): Promise<StartedWorker> {
  const w = await startLlamaServerWorker(LLAMA_SERVER as string, ["--threads", "1", ...args]);
  children.push(w.child);
  return w;
}

describe.skipIf(LLAMA_SERVER === undefined)("llama-server adapter: the engine's life is the adapter's", () => {
  describe.each([
    ["setpriv --pdeathsig (Linux)", "setpriv"],
    ["the shell guard (macOS and wherever setpriv is missing)", "sh"],
  ])("tied through %s", (_name, guard) => {
    it("SIGKILL to the adapter leaves no llama-server behind", async () => {
      const w = await start([`--engine-guard=${guard}`]);
      const s = await serving(w.child);
      expect(s.guard).toBe(guard);
      expect(isPidAlive(s.engine_pid)).toBe(true);
      const r = await postJson(new URL("/v1/infer", w.url).toString(), { prompt: "Once upon a time", max_tokens: 4 });
      expect(r.status, r.text).toBe(200);
      w.child.kill("SIGKILL");
      await w.child.exited;
      await gone(s.engine_pid);
    });

    it("SIGKILL to llama-server makes the adapter exit non-zero, saying why", async () => {
      const w = await start([`--engine-guard=${guard}`]);
      const s = await serving(w.child);
      process.kill(s.engine_pid, "SIGKILL");
      const exit = await w.child.waitForExit(30_000);
      expect(exit.code, w.child.tail()).toBe(1);
      expect(w.child.stdout).toMatch(/the engine llama-server \(.*\) was killed by SIGKILL while serving/);
      expect(w.child.stdout).toMatch(/"msg":"the engine failed; the worker stops"/);
    });
  });

  it("llama-server takes requests only from its adapter (an API key of its own)", async () => {
    const w = await start();
    const s = await serving(w.child);
    expect(s.key.length).toBeGreaterThan(20);
    const started = /^\{.*"msg":"llama-server started".*\}$/m.exec(w.child.stdout)?.[0] ?? "";
    expect(started).not.toContain(s.key); // not on its command line, not in the log
    const without = await postJson(new URL("/completion", s.engine_url).toString(), { prompt: "x", n_predict: 1 });
    expect(without.status).toBe(401);
    const withKey = await postJson(
      new URL("/completion", s.engine_url).toString(),
      { prompt: "x", n_predict: 1 },
      { token: s.key },
    );
    expect(withKey.status, withKey.text).toBe(200);
  });

  it("SIGTERM stops llama-server with the adapter (exit 0, engine gone)", async () => {
    const w = await start();
    const s = await serving(w.child);
    expect(await w.child.stop()).toEqual({ code: 0, signal: null });
    await gone(s.engine_pid);
    expect(w.child.stdout).toMatch(/"state":"stopping","msg":"llama-server exited"/);
  });

  it("copies llama-server's own log into the worker's log, one structured line each", async () => {
    const w = await start();
    await serving(w.child);
    const engineLines = w.child.stdout
      .split("\n")
      .filter((l) => l.includes('"component":"engine"') && l.includes('"stream":"stderr"'));
    expect(engineLines.length).toBeGreaterThan(5);
    expect(engineLines.some((l) => /llama_server: model loaded|listening on http/.test(l))).toBe(true);
  });

  it("/info, the heartbeat's engine state: version from llama-server, capabilities, loaded model, memory", async () => {
    const w = await start(["--parallel", "3"]);
    const info = (await getJson(new URL("/info", w.url).toString())).body;
    expect(info).toMatchObject({
      worker_type: "llama-server",
      implementation: "llama-server",
      slots: 3,
      capabilities: ["text-generation", "chat", "json_schema", "embeddings"],
    });
    expect(info.version).toMatch(/^b\d+-[0-9a-f]+$/);
  });
});

describe.skipIf(LLAMA_SERVER === undefined)("llama-server adapter: engines that cannot start", () => {
  const serve = (engine: string, extra: string[] = []) => {
    const child = startRbee(
      [
        "worker",
        "serve",
        "llama-server",
        "--engine",
        engine,
        "--model",
        requireStoriesModel(),
        "--port",
        "0",
        ...extra,
      ],
      { env: { RBEE_LOG_LEVEL: "info" } },
    );
    children.push(child);
    return child;
  };

  it("a stand-in for llama-server that never becomes ready is stopped after the start timeout, with its log in the error", async () => {
    const standIn = join(dir, "stand-in-llama-server-that-never-gets-ready");
    writeFileSync(standIn, '#!/bin/sh\necho "stand-in llama-server: loading forever" >&2\nexec sleep 600\n', {
      mode: 0o755,
    });
    const child = serve(standIn, ["--engine-start-timeout=2"]);
    const exit = await child.waitForExit(30_000);
    expect(exit.code, child.tail()).toBe(1);
    expect(child.stderr).toContain(`llama-server (${standIn}, pid`);
    expect(child.stderr).toMatch(/was not ready within 2 s/);
    expect(child.stderr).toContain("stand-in llama-server: loading forever");
    const pid = startedPid(child);
    expect(pid).toBeGreaterThan(0);
    await gone(pid as number);
  });

  it("a missing llama-server is reported with its path and what to do", async () => {
    const missing = join(dir, "no-such-llama-server");
    const child = serve(missing);
    const exit = await child.waitForExit(30_000);
    expect(exit.code).toBe(1);
    expect(child.stderr).toContain(`cannot run the engine ${missing}: no such file`);
    expect(child.stderr).toContain("rbee engine build llama.cpp");
    expect(startedPid(child)).toBeUndefined();
  });

  it("a corrupt llama-server (random bytes, chmod +x) is reported with its path, never run", async () => {
    const corrupt = join(dir, "corrupt-llama-server");
    writeFileSync(corrupt, randomBytes(64 * 1024));
    chmodSync(corrupt, 0o755);
    const child = serve(corrupt);
    const exit = await child.waitForExit(30_000);
    expect(exit.code).toBe(1);
    expect(child.stderr).toContain(`cannot run the engine ${corrupt}: it is not a program this system can run`);
    expect(startedPid(child)).toBeUndefined();
  });
});

describe("llama-server adapter: no llama-server anywhere", () => {
  it("says where it looked and what to do, and exits 1", async () => {
    const child = startRbee(["worker", "serve", "llama-server", "--model", requireStoriesModel(), "--port", "0"], {
      env: { PATH: "/nonexistent", RBEE_LLAMA_SERVER: "", RBEE_ENGINES_DIR: join(dir, "no-engines") },
    });
    children.push(child);
    const exit = await child.waitForExit(30_000);
    expect(exit.code).toBe(1);
    expect(child.stderr).toContain(
      `rbee worker: no working llama-server found (none built in ${join(dir, "no-engines")}, none added, none on PATH, RBEE_LLAMA_SERVER not set)`,
    );
    expect(child.stderr).toContain("rbee engine build llama.cpp");
    expect(child.stderr).toContain("rbee engine add llama-server <path>");
  });
});

describe.skipIf(LLAMA_SERVER === undefined)("llama-server adapter: a client that goes away", () => {
  it("a streamed request whose client disconnects stops generation in llama-server; the next one is served", async () => {
    // a random-weight model of 24 MiB: slow enough per token that a long generation is still running when checked
    const model = (await cachedGeneratedModel(24 * MiB)).path;
    const w = await startLlamaServerWorker(
      LLAMA_SERVER as string,
      ["--threads", "1", "--parallel", "1", "--ctx-size", "2048"],
      {
        model,
      },
    );
    children.push(w.child);
    const s = await serving(w.child);
    const metrics = async () => {
      const text = (await getJson(new URL("/metrics", s.engine_url).toString(), s.key)).text;
      const value = (name: string) => Number(new RegExp(`^llamacpp:${name} (\\S+)$`, "m").exec(text)?.[1]);
      return { processing: value("requests_processing"), predicted: value("tokens_predicted_total") };
    };
    const maxTokens = 1800;
    let tokens = 0;
    const r = await postSse(
      new URL("/v1/infer", w.url).toString(),
      { prompt: "Once upon a time", max_tokens: maxTokens, temperature: 0, stream: true },
      { onEvent: (e) => (e.event === "token" && ++tokens >= 3 ? "stop" : undefined) },
    );
    expect(r.disconnected).toBe(true);
    // llama-server notices the closed connection and releases the slot
    await waitFor(
      async () => ((await metrics()).processing === 0 ? true : undefined),
      15_000,
      "llama-server to go idle",
    );
    const idle = await metrics();
    expect(idle.predicted).toBeLessThan(maxTokens);
    // llama-server's own word for it, in the worker's log
    await w.child.waitForLine(/"stream":"stderr","msg":"[^"]*cancel task/, 5000);
    const slots = (await getJson(new URL("/slots", s.engine_url).toString(), s.key)).body as Array<{
      is_processing: boolean;
    }>;
    expect(slots.every((slot) => !slot.is_processing)).toBe(true);
    // nothing more is generated for the request that went away
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await metrics()).predicted).toBe(idle.predicted);
    const next = await postJson(new URL("/v1/infer", w.url).toString(), { prompt: "Once upon a time", max_tokens: 4 });
    expect(next.status, next.text).toBe(200);
  });
});
