import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { freePort, isPidAlive } from "@rbee/server-kit";
import { ChildHandle, requireOrSkip, waitFor } from "@rbee/testing";
import {
  EngineBinaryError,
  type EngineExitedError,
  type EngineGuard,
  EngineProcess,
  EngineStartError,
  findSetpriv,
  processRss,
  processRssAnywhere,
} from "@rbee/worker-kit";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

// The adapter kit's engine process, on a stand-in engine (a small node program that prints log lines
// and answers /health like an engine; fixtures/adapter-kit/stand-in-engine.mjs) and a stand-in adapter.
const FIXTURES = join(fileURLToPath(new URL(".", import.meta.url)), "fixtures/adapter-kit");
const STAND_IN_ENGINE = join(FIXTURES, "stand-in-engine.mjs");
const GUARDS: EngineGuard[] = findSetpriv() ? ["setpriv", "sh"] : ["sh"];

function captureLog() {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n")) if (l.trim() !== "") lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: "info" }, sink), lines };
}

const started: EngineProcess[] = [];
function engine(o: Partial<ConstructorParameters<typeof EngineProcess>[0]> & { args: string[]; readyUrl: string }) {
  const e = new EngineProcess({
    name: "stand-in",
    binary: process.execPath,
    binaryHint: "build it",
    startTimeoutMs: 20_000,
    stopGraceMs: 2000,
    log: pino({ level: "silent" }),
    ...o,
  });
  started.push(e);
  return e;
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "rbee-engine-process-"));
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((e) => e.stop()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(GUARDS)("an engine started through the %s guard", (guard) => {
  it("is ready once /health answers 200, is tracked by its own pid, logs line by line, and stops on SIGTERM", async () => {
    const port = await freePort();
    const { log, lines } = captureLog();
    const e = engine({
      args: [STAND_IN_ENGINE, "serve", String(port)],
      readyUrl: `http://127.0.0.1:${port}/health`,
      guard,
      log,
    });
    await e.start();
    expect(e.state).toBe("ready");
    expect(e.guard).toBe(guard);
    const pid = e.pid as number;
    // the pid tracked is the engine's, whichever process was spawned around it
    expect(
      lines.some(
        (l) => l.engine === "stand-in" && l.stream === "stderr" && l.msg === `stand-in engine: pid ${pid}, mode serve`,
      ),
    ).toBe(true);
    expect(lines.some((l) => l.stream === "stdout" && l.msg === "stand-in engine: hello on stdout")).toBe(true);
    if (guard === "setpriv") expect(e.spawnedPid).toBe(pid);
    else expect(e.spawnedPid).not.toBe(pid);
    const exit = await e.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(e.state).toBe("stopped");
    expect(e.logTail()).toContain("stand-in engine: SIGTERM, bye");
    expect(isPidAlive(pid)).toBe(false);
    expect(await e.stop()).toEqual(exit); // idempotent
  });

  it("an engine that ignores SIGTERM is killed after the grace period", async () => {
    const port = await freePort();
    const e = engine({
      args: [STAND_IN_ENGINE, "stubborn", String(port)],
      readyUrl: `http://127.0.0.1:${port}/health`,
      guard,
      stopGraceMs: 500,
    });
    await e.start();
    expect(await e.stop()).toEqual({ code: null, signal: "SIGKILL" });
    expect(e.logTail()).toContain("stand-in engine: SIGTERM, ignored");
    expect(isPidAlive(e.pid as number)).toBe(false);
  });

  it("an engine that exits while starting fails at once with its exit code and its last lines", async () => {
    const e = engine({ args: [STAND_IN_ENGINE, "exit", "3"], readyUrl: "http://127.0.0.1:9/health", guard });
    const err = (await e.start().catch((x: unknown) => x)) as EngineStartError;
    expect(err).toBeInstanceOf(EngineStartError);
    expect(err.message).toMatch(/exited with code 3 while starting/);
    expect(err.message).toContain("fatal: cannot load the model");
    expect(err.facts.exit).toEqual({ code: 3, signal: null });
    expect(e.state).toBe("failed");
  });

  it("an engine that never becomes ready is stopped after the start timeout; the error has its path and log tail", async () => {
    const e = engine({
      args: [STAND_IN_ENGINE, "hang"],
      readyUrl: `http://127.0.0.1:${await freePort()}/health`,
      startTimeoutMs: 1500,
      guard,
    });
    const err = (await e.start().catch((x: unknown) => x)) as EngineStartError;
    expect(err).toBeInstanceOf(EngineStartError);
    expect(err.code).toBe("engine_start_timeout");
    expect(err.message).toContain(process.execPath);
    expect(err.message).toContain("stand-in engine: loading forever");
    expect(isPidAlive(e.pid as number)).toBe(false);
    expect(e.state).toBe("failed");
  });

  it("an engine that dies while ready is reported once, with the signal", async () => {
    const port = await freePort();
    let reported: EngineExitedError | undefined;
    const e = engine({
      args: [STAND_IN_ENGINE, "serve", String(port)],
      readyUrl: `http://127.0.0.1:${port}/health`,
      guard,
      onUnexpectedExit: (err) => {
        reported = err;
      },
    });
    await e.start();
    process.kill(e.pid as number, "SIGKILL");
    await e.exited;
    expect(reported?.exit).toEqual({ code: null, signal: "SIGKILL" });
    expect(reported?.message).toMatch(/was killed by SIGKILL while serving/);
  });

  it("no engine outlives its adapter, even when the adapter gets SIGKILL", async () => {
    const adapter = new ChildHandle(process.execPath, [join(FIXTURES, "stand-in-adapter.mjs"), guard]);
    try {
      const line = await adapter.waitForLine(/^\{"engine_pid".*\}$/m);
      const { engine_pid: pid, guard: used } = JSON.parse(line[0]) as { engine_pid: number; guard: string };
      expect(used).toBe(guard);
      expect(isPidAlive(pid)).toBe(true);
      adapter.kill("SIGKILL");
      await adapter.exited;
      await waitFor(() => (isPidAlive(pid) ? undefined : true), 10_000, `engine ${pid} to die with its adapter`);
    } finally {
      await adapter.stop(1000);
    }
  });
});

describe("an engine binary that cannot run is reported with its path, before anything is spawned", () => {
  const start = (binary: string) =>
    engine({ binary, args: [], readyUrl: "http://127.0.0.1:9/health" })
      .start()
      .catch((x: unknown) => x) as Promise<EngineBinaryError>;

  it("missing", async () => {
    const path = join(dir, "no-such-engine");
    const err = await start(path);
    expect(err).toBeInstanceOf(EngineBinaryError);
    expect(err.message).toBe(`cannot run the engine ${path}: no such file; build it`);
  });

  it("not executable", async () => {
    const path = join(dir, "not-executable");
    writeFileSync(path, "#!/bin/sh\nexit 0\n", { mode: 0o644 });
    expect((await start(path)).message).toContain(`${path}: it is not executable`);
  });

  it("corrupt (random bytes, chmod +x): exec format error, never run as a shell script", async () => {
    const path = join(dir, "corrupt-engine");
    writeFileSync(path, randomBytes(4096));
    chmodSync(path, 0o755);
    const err = await start(path);
    expect(err).toBeInstanceOf(EngineBinaryError);
    expect(err.message).toContain(`${path}: it is not a program this system can run (exec format error`);
  });
});

describe("an engine's resident memory", () => {
  const hasPs = requireOrSkip(
    ["/bin/ps", "/usr/bin/ps"].some((p) => existsSync(p)),
    "the engine memory test's ps half",
    "it needs ps: install procps (apt-get install -y procps)",
  );
  it.skipIf(!hasPs)(
    "is read from /proc on Linux and with ps elsewhere (both tried here; needs procps' ps); 0 for a process that is gone",
    async () => {
      const viaProc = processRss(process.pid);
      const viaPs = await processRssAnywhere(process.pid, "ps");
      expect(viaProc).toBeGreaterThan(10 * 1024 * 1024);
      // the same process, read a moment apart: the same order of magnitude
      expect(viaPs).toBeGreaterThan(viaProc / 2);
      expect(viaPs).toBeLessThan(viaProc * 2);
      expect(await processRssAnywhere(2 ** 22 + 12345, "ps")).toBe(0);
      expect(processRss(2 ** 22 + 12345)).toBe(0);
    },
  );
});
