import { existsSync } from "node:fs";
import { join } from "node:path";
import { requireStoriesModel, STORIES_GREEDY_PREFIX, startRbee, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  expectNoProcessesLeft,
  expectOneLine,
  heavyModulesIn,
  pidAlive,
  pidFromFile,
  rbeeLoadedModules,
  type Sandbox,
  sandbox,
  sandboxProcesses,
} from "./helpers.js";

interface WorkerJson {
  worker_id: string;
  status: string;
  in_flight: number;
  slots: number;
  tokens_generated: number;
}

// One cluster, started by `rbee infer` itself from an empty cache; the steps build on each other.
describe("rbee infer, chat and worker against a cluster it starts itself", () => {
  let s: Sandbox;
  let model: string;
  let firstWorker = "";
  let bigWorker = "";
  const workers = async (): Promise<WorkerJson[]> => {
    const r = await s.rbee(["worker", "ls", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as WorkerJson[];
  };

  beforeAll(async () => {
    model = requireStoriesModel();
    s = await sandbox();
  });
  afterAll(async () => {
    await s.dispose();
  }, 90_000);

  it("works from nothing: starts the queen and a hive, streams the greedy story, narrates on stderr", async () => {
    const { result: r, modules } = await rbeeLoadedModules(
      s,
      [
        "infer",
        "-m",
        "../shared/models/stories260K.gguf",
        "-p",
        "Once upon a time",
        "--temperature",
        "0",
        "--max-tokens",
        "40",
      ],
      { timeoutMs: 90_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith(STORIES_GREEDY_PREFIX)).toBe(true);
    expect(r.stdout.endsWith("\n")).toBe(true);
    expect(r.stdout.split("\n").filter((l) => l !== "").length).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/^rbee: starting queen$/m);
    expect(r.stderr).toMatch(/^rbee: starting hive$/m);
    expect(r.stderr).toMatch(/^queen: /m);
    expect(r.stderr).toMatch(/40 tokens in [\d.]+ s/);
    expect(pidFromFile(s.cacheDir, "queen")).toBeDefined();
    expect(pidFromFile(s.cacheDir, "hive")).toBeDefined();
    // the CLI starts the daemons and waits for them without loading the schemas (it competes with
    // them for the CPU meanwhile); the daemons' own modules are not recorded
    expect(modules.some((m) => m.endsWith("/cli/dist/local-cluster.js"))).toBe(true);
    expect(heavyModulesIn(modules)).toEqual([]);
  });

  it("status --json shows the hive and the worker the request started", async () => {
    const r = await s.rbee(["status", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const cluster = JSON.parse(r.stdout);
    expect(cluster.hives).toHaveLength(1);
    expect(cluster.hives[0].state).toBe("live");
    expect(cluster.workers).toHaveLength(1);
    expect(cluster.workers[0].model).toMatch(/stories260k/i);
    firstWorker = cluster.workers[0].worker_id;
    const text = await s.rbee(["status"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(firstWorker);
    expect(text.stdout).toMatch(/^HIVE\s+STATE\s+URL/m);
  });

  it("a warm infer loads no schemas (zod), no server code, no engine and not the code that starts daemons", async () => {
    const { result, modules } = await rbeeLoadedModules(s, ["infer", "-m", model, "-p", "Once", "-n", "4", "-q"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).not.toBe("");
    expect(modules.some((m) => m.endsWith("/cli/dist/commands/infer.js"))).toBe(true); // the hook saw the command
    expect(heavyModulesIn(modules)).toEqual([]);
    expect(modules.filter((m) => /\/cli\/dist\/(local-cluster|daemons)\.js$/.test(m))).toEqual([]);
  });

  it("--json prints the job's result; --no-stream prints the text once", async () => {
    const args = ["infer", "-m", model, "-p", "Once upon a time", "--temperature", "0", "--max-tokens", "12"];
    const json = await s.rbee([...args, "--json", "--quiet"]);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stderr).toBe("");
    const result = JSON.parse(json.stdout);
    expect(result).toMatchObject({ tokens_generated: 12, finish_reason: "length", worker_id: firstWorker });
    expect(result.text.startsWith(", there was")).toBe(true);
    const plain = await s.rbee([...args, "--no-stream", "-q"]);
    expect(plain.stdout).toBe(`${result.text}\n`);
  });

  it("an unknown model: one line, exit 4", async () => {
    const r = await s.rbee(["infer", "-m", "no-such-model", "-p", "hi"]);
    expect(r.code).toBe(4);
    expect(expectOneLine(r.stderr)).toMatch(/^rbee: model 'no-such-model' was not found/);
    expect(r.stdout).toBe("");
  });

  it("chat over piped stdin answers each line, keeping the history", async () => {
    const r = await s.rbee(["chat", "-m", model, "--temperature", "0", "--max-tokens", "8", "--json"], {
      input: "Hello there\nTell me a story\n",
    });
    expect(r.code, r.stderr).toBe(0);
    const replies = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(replies).toHaveLength(2);
    for (const reply of replies) expect(reply.text.length).toBeGreaterThan(0);
    // the second turn carries the first exchange: its prompt is longer than the first one plus its reply
    expect(replies[1].prompt_tokens).toBeGreaterThan(replies[0].prompt_tokens + replies[0].tokens_generated);
    const streamed = await s.rbee(["chat", "-m", model, "--temperature", "0", "--max-tokens", "8", "-q"], {
      input: "Hello there\n/reset\nHello there\n",
    });
    expect(streamed.code, streamed.stderr).toBe(0);
    // after /reset the same message gets the same (greedy) reply
    const lines = streamed.stdout.split("\n").filter((l) => l !== "");
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(streamed.stdout.startsWith(replies[0].text)).toBe(true);
    expect(streamed.stdout.slice(replies[0].text.length + 1).startsWith(replies[0].text)).toBe(true);
  });

  it("worker spawn prints the new worker's id; ls lists it; stop stops one", async () => {
    const spawn = await s.rbee(["worker", "spawn", "-m", model, "--ctx-size", "65536", "--parallel", "1"], {
      timeoutMs: 90_000,
    });
    expect(spawn.code, spawn.stderr).toBe(0);
    bigWorker = spawn.stdout.trim();
    expect(bigWorker).toMatch(/^[a-z0-9._-]+$/);
    expect(spawn.stderr).toMatch(/^queen: /m);
    const listed = await workers();
    expect(listed.map((w) => w.worker_id).sort()).toEqual([firstWorker, bigWorker].sort());
    expect(listed.find((w) => w.worker_id === bigWorker)?.slots).toBe(1);
    const table = await s.rbee(["worker", "ls"]);
    expect(table.stdout).toMatch(new RegExp(`^${bigWorker}\\s`, "m"));

    const stop = await s.rbee(["worker", "stop", firstWorker]);
    expect(stop.code, stop.stderr).toBe(0);
    expect(stop.stdout).toBe(`${firstWorker}\n`);
    expect((await workers()).map((w) => w.worker_id)).toEqual([bigWorker]);
    const again = await s.rbee(["worker", "stop", firstWorker]);
    expect(again.code).toBe(4);
    expect(expectOneLine(again.stderr)).toMatch(new RegExp(`no worker '${firstWorker}'`));
  });

  it("Ctrl+C during a long infer cancels the job and exits 130", async () => {
    // 60000 tokens in a 64k context would run for minutes: only a cancelled job ends quickly
    const child = startRbee(
      ["infer", "-m", model, "-p", "Once upon a time", "--temperature", "0", "--max-tokens", "60000"],
      { env: s.env },
    );
    child.proc.stdin?.end();
    await child.waitForLine(/there was a little girl/, 60_000);
    child.kill("SIGINT");
    const exit = await child.waitForExit(15_000);
    expect(exit.code, child.tail()).toBe(130);
    expect(child.stderr).toMatch(/^rbee: cancelled$/m);
    expect(child.stdout.endsWith("\n")).toBe(true);
    // the worker stops generating: back to Ready with nothing in flight, and its token count (sent
    // every 0.5 s in heartbeats) settles, where an uncancelled request would keep it growing for minutes
    await waitFor(
      async () => {
        const w = (await workers()).find((x) => x.worker_id === bigWorker);
        return w && w.status === "Ready" && w.in_flight === 0 ? w : undefined;
      },
      15_000,
      "the worker to be idle again",
    );
    let previous = -1;
    await waitFor(
      async () => {
        const now = (await workers()).find((x) => x.worker_id === bigWorker)?.tokens_generated ?? -2;
        const settled = now === previous;
        previous = now;
        if (!settled) await new Promise((r) => setTimeout(r, 1200));
        return settled ? now : undefined;
      },
      20_000,
      "the worker's token count to stand still",
    );
  });

  it("worker spawn --replicas keeps a minimum: every worker is printed, a stopped one is replaced, 0 forgets it", async () => {
    const spawn = await s.rbee(["worker", "spawn", "-m", model, "--replicas", "2", "--parallel", "1"], {
      timeoutMs: 90_000,
    });
    expect(spawn.code, spawn.stderr).toBe(0);
    const ids = spawn.stdout.trim().split("\n");
    // the worker already serving the model counts towards the two
    expect(ids).toHaveLength(2);
    expect(ids).toContain(bigWorker);
    expect(spawn.stderr).toMatch(/keeps at least 2 workers: 1 run, spawning 1/);
    const status = await s.rbee(["status"]);
    expect(status.stdout).toMatch(/kept at a minimum of workers \(running\/minimum\): stories260k 2\/2/);

    const stop = await s.rbee(["worker", "stop", bigWorker]);
    expect(stop.code, stop.stderr).toBe(0);
    const replaced = await waitFor(
      async () => {
        const now = (await workers()).filter((w) => w.status === "Ready");
        return now.length === 2 && !now.some((w) => w.worker_id === bigWorker) ? now : undefined;
      },
      60_000,
      "a new worker in place of the stopped one",
    );
    expect(replaced.map((w) => w.worker_id)).toContain(ids.find((id) => id !== bigWorker));

    const forget = await s.rbee(["worker", "spawn", "-m", model, "--replicas", "0"]);
    expect(forget.code, forget.stderr).toBe(0);
    expect(forget.stderr).toMatch(/no minimum of workers any more/);
  });

  it("down stops the hive, its workers and the queen, and leaves no process behind", async () => {
    const before = sandboxProcesses(s.cacheDir);
    const queenPid = pidFromFile(s.cacheDir, "queen");
    const hivePid = pidFromFile(s.cacheDir, "hive");
    expect(queenPid).toBeDefined();
    expect(hivePid).toBeDefined();
    expect(before).toEqual(expect.arrayContaining([queenPid, hivePid]));
    expect(before.length).toBeGreaterThanOrEqual(3); // queen, hive and the worker
    const r = await s.rbee(["down"], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^hive stopped \(pid \d+\)\nqueen stopped \(pid \d+\)\n$/);
    for (const pid of before) expect(pidAlive(pid), `pid ${pid}`).toBe(false);
    expect(existsSync(join(s.cacheDir, "run", "queen.pid"))).toBe(false);
    expect(existsSync(join(s.cacheDir, "run", "hive.pid"))).toBe(false);
    await expectNoProcessesLeft(s.cacheDir);
  });
});
