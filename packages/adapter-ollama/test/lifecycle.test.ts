import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isPidAlive } from "@rbee/server-kit";
import { type ChildHandle, OLLAMA_FIXTURE_SERVE, postJson, startWorker, waitFor } from "@rbee/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { FIXTURE_MODEL } from "./helpers.js";

// Start mode: the adapter runs `<ollama> serve` itself. The Ollama API FIXTURE, run as a program,
// stands in for the real `ollama serve` (it listens where OLLAMA_HOST says, as Ollama does).
let dir: string;
let standIn: string;
const children: ChildHandle[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rbee-ollama-lifecycle-"));
  standIn = join(dir, "ollama");
  writeFileSync(standIn, `#!/bin/sh\nexec "${process.execPath}" "${OLLAMA_FIXTURE_SERVE}" "$@"\n`);
  chmodSync(standIn, 0o755);
});
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop(2000)));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const gone = (pid: number) => waitFor(() => (isPidAlive(pid) ? undefined : true), 10_000, `process ${pid} to be gone`);

async function startStarted(guard: string) {
  const w = await startWorker("ollama", ["--start", "--engine", standIn, `--engine-guard=${guard}`], {
    model: FIXTURE_MODEL,
  });
  children.push(w.child);
  const m = await w.child.waitForLine(/^\{.*"msg":"ollama serving".*\}$/m);
  const line = JSON.parse(m[0]) as { engine_pid: number; url: string; mode: string };
  return { w, line };
}

describe("ollama adapter, start mode, on the fixture as a stand-in `ollama serve`", () => {
  describe.each([["setpriv"], ["sh"]])("tied through %s", (guard) => {
    it("serves through the ollama serve it started; SIGKILL to the adapter leaves no fixture process", async () => {
      const { w, line } = await startStarted(guard);
      expect(line.mode).toBe("start");
      expect(isPidAlive(line.engine_pid)).toBe(true);
      expect(w.child.stdout).toMatch(/Listening on 127\.0\.0\.1:\d+ \(version 0\.5\.7, FIXTURE\)/);
      const r = await postJson(`${w.url}/v1/infer`, { prompt: "Once upon a time", max_tokens: 3 });
      expect(r.status, r.text).toBe(200);
      expect(r.body.text).toBe(", there was");
      w.child.kill("SIGKILL");
      await w.child.waitForExit();
      await gone(line.engine_pid);
    });
  });

  it("SIGTERM stops the adapter and its ollama serve, exit 0", async () => {
    const { w, line } = await startStarted("setpriv");
    w.child.kill("SIGTERM");
    expect((await w.child.waitForExit()).code).toBe(0);
    await gone(line.engine_pid);
  });

  it("an ollama serve that dies takes the adapter down with exit 1 (its hive restarts the pair)", async () => {
    const { w, line } = await startStarted("setpriv");
    process.kill(line.engine_pid, "SIGKILL");
    const exit = await w.child.waitForExit();
    expect(exit.code).toBe(1);
    expect(w.child.stdout + w.child.stderr).toMatch(/ollama.*was killed by SIGKILL/);
  });

  it("a missing binary fails with its path and what to do", async () => {
    await expect(
      startWorker("ollama", ["--start", "--engine", join(dir, "nope")], { model: FIXTURE_MODEL, timeoutMs: 20_000 }),
    ).rejects.toThrow(/nope.*install Ollama/s);
  });
});
