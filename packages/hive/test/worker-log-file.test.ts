import { closeSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isPortFree, PortAllocator } from "../src/port-allocator.js";
import {
  formatLogLine,
  isHealthPollLine,
  openWorkerLog,
  readLastLines,
  workerLogPath,
} from "../src/worker-log-file.js";

describe("worker log files", () => {
  let tmp: string;
  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), "rbee-hive-logs-"));
  });
  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it("live under <logs>/workers/<id>.log and start with a line saying what was started", async () => {
    const path = workerLogPath(join(tmp, "logs"), "llm-1");
    expect(path).toBe(join(tmp, "logs", "workers", "llm-1.log"));
    closeSync(openWorkerLog(path, { msg: "hive: starting worker", worker_id: "llm-1" }));
    closeSync(openWorkerLog(path, { msg: "hive: starting worker", worker_id: "llm-1" }));
    const lines = (await readFile(path, "utf8")).trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ service: "hive", msg: "hive: starting worker" });
  });

  it("readLastLines reads the tail of a large file, and [] for no file", async () => {
    const path = join(tmp, "big.log");
    const all = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${"x".repeat(i % 50)}`);
    await writeFile(path, `${all.join("\n")}\n`);
    expect(await readLastLines(path, 3)).toEqual(all.slice(-3));
    expect(await readLastLines(path, 5000)).toEqual(all.slice(-5000));
    expect(await readLastLines(join(tmp, "none.log"), 10)).toEqual([]);
  });

  it("formatLogLine turns JSON log lines into words and leaves other lines alone", () => {
    const json = JSON.stringify({ level: "error", msg: "worker failed to start", err: { message: "bad file" } });
    expect(formatLogLine(json)).toBe("error: worker failed to start: bad file");
    expect(formatLogLine("rbee worker: bad file")).toBe("rbee worker: bad file");
    expect(formatLogLine("{not json")).toBe("{not json");
    expect(formatLogLine("y".repeat(1000))).toHaveLength(401);
    expect(formatLogLine(JSON.stringify({ level: "info", msg: "status", from: "Starting", to: "Failed" }))).toBe(
      "info: status Starting → Failed",
    );
    const poll = JSON.stringify({ level: "info", method: "GET", path: "/health", status: 503, msg: "request" });
    expect(formatLogLine(poll)).toBe("info: request GET /health 503");
    expect(isHealthPollLine(poll)).toBe(true);
    expect(isHealthPollLine(JSON.stringify({ msg: "request", path: "/v1/infer" }))).toBe(false);
  });
});

describe("PortAllocator", () => {
  it("hands out free ports from the first one upward, skipping held and bound ones", async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const taken = (busy.address() as { port: number }).port;
    try {
      expect(await isPortFree(taken, "127.0.0.1")).toBe(false);
      const ports = new PortAllocator(taken, "127.0.0.1");
      const [a, b] = await Promise.all([ports.allocate(), ports.allocate()]);
      expect(a).toBeGreaterThan(taken);
      expect(b).toBeGreaterThan(a as number);
      ports.release(a as number);
      expect(await ports.allocate()).toBe(a);
      expect([...ports.held].sort()).toEqual([a, b].sort());
    } finally {
      busy.close();
    }
  });
});
