import type { ClusterSnapshot, ClusterWorker } from "@rbee/contract";
import { describe, expect, it } from "vitest";
import { describeLogLine, localUrl } from "../src/daemons.js";
import { describeClusterEvent, renderCluster, renderWorkers } from "../src/render/cluster.js";
import { formatBytes, formatDuration } from "../src/render/format.js";
import { narrationLine } from "../src/render/narration.js";
import { describeProgress, ProgressDisplay, renderBar } from "../src/render/progress.js";
import { renderTable } from "../src/render/table.js";

function buffer(isTTY = false) {
  const out = { text: "", isTTY, columns: 80, write: (s: string) => (out.text += s) };
  return out;
}

describe("human-readable numbers", () => {
  it("sizes", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(24 * 1024 ** 3)).toBe("24 GiB");
    expect(formatBytes(123.4 * 1024 ** 2)).toBe("123 MiB");
  });
  it("durations", () => {
    expect(formatDuration(250)).toBe("250ms");
    expect(formatDuration(4200)).toBe("4.2s");
    expect(formatDuration(42_000)).toBe("42s");
    expect(formatDuration(200_000)).toBe("3m 20s");
    expect(formatDuration(2 * 3_600_000 + 5 * 60_000)).toBe("2h 5m");
    expect(formatDuration(null)).toBe("forever");
  });
});

describe("tables", () => {
  it("aligns columns, right-aligns numbers, trims trailing space", () => {
    const t = renderTable(
      [{ header: "id" }, { header: "tok/s", align: "right" }, { header: "note" }],
      [
        ["a", "5", ""],
        ["longer-id", "1234", "x"],
      ],
    );
    expect(t).toBe(["ID         TOK/S  NOTE", "a              5", "longer-id   1234  x"].join("\n"));
  });
  it("newlines in cells cannot break the layout", () => {
    expect(renderTable([{ header: "a" }], [["x\ny"]])).toBe("A\nx y");
  });
});

describe("progress", () => {
  const p = {
    done: 12 * 1024 ** 2,
    total: 30 * 1024 ** 2,
    unit: "bytes",
    label: "downloading model",
    rate: 5 * 1024 ** 2,
  };

  it("describes one step in words", () => {
    expect(describeProgress(p)).toBe("downloading model: 40% (12 MiB of 30 MiB, 5 MiB/s)");
    expect(describeProgress({ done: 7, total: null, unit: "tokens" })).toBe("progress: 7 tokens");
  });

  it("draws a bar that fits the terminal", () => {
    const bar = renderBar(p, 80);
    expect(bar).toMatch(/^downloading model \[#+-+\] {2}40% 12 MiB of 30 MiB, 5 MiB\/s$/);
    expect(bar.length).toBeLessThanOrEqual(80);
    expect(renderBar(p, 30).length).toBeLessThan(30);
  });

  it("off a terminal: plain lines, one per 10% step, no escape codes", () => {
    const out = buffer(false);
    const d = new ProgressDisplay(out, { now: () => 0 });
    for (let done = 0; done <= 100; done += 1) d.progress({ done, total: 100, unit: "", label: "loading" });
    const lines = out.text.trimEnd().split("\n");
    expect(lines).toHaveLength(11);
    expect(lines[0]).toBe("loading: 0% (0 of 100)");
    expect(lines.at(-1)).toBe("loading: 100% (100 of 100)");
    expect(out.text).not.toMatch(/\x1b|\r/);
  });

  it("off a terminal, an unknown total prints at most one line every 2 s", () => {
    let now = 0;
    const out = buffer(false);
    const d = new ProgressDisplay(out, { now: () => now });
    for (let i = 0; i < 50; i++) {
      d.progress({ done: i, total: null, unit: "tokens" });
      now += 100;
    }
    expect(out.text.trimEnd().split("\n")).toHaveLength(3);
  });

  it("on a terminal: the bar is redrawn in place and narration goes above it", () => {
    const out = buffer(true);
    let now = 0;
    const d = new ProgressDisplay(out, { now: () => now });
    d.progress({ done: 1, total: 4, unit: "", label: "loading" });
    now += 100;
    d.line("hive x: almost there");
    d.progress({ done: 4, total: 4, unit: "", label: "loading" });
    expect(out.text).toContain("\r\x1b[2Kloading [");
    expect(out.text).toContain("\r\x1b[2Khive x: almost there\nloading [");
    expect(out.text.endsWith("100% 4 of 4\n")).toBe(true);
  });
});

describe("narration", () => {
  it("prefixes the source unless the message names it already", () => {
    expect(narrationLine({ source: "queen", message: "spawning llm worker on cpu" })).toBe(
      "queen: spawning llm worker on cpu",
    );
    expect(narrationLine({ source: "hive x", message: "hive x: model loaded in 0.2 s" })).toBe(
      "hive x: model loaded in 0.2 s",
    );
    expect(narrationLine({ source: "queen", message: "slow disk", level: "warn" })).toBe("queen: warning: slow disk");
  });
});

const worker: ClusterWorker = {
  worker_id: "llm-1",
  hive_id: "box",
  worker_type: "llm",
  capabilities: ["text-generation", "chat"],
  model: "stories260k",
  device: "cpu",
  url: "http://127.0.0.1:9300",
  pid: 4242,
  status: "Ready",
  routable: true,
  slots: 4,
  in_flight: 1,
  requests_total: 12,
  tokens_generated: 480,
  tokens_per_second: 1234.5,
  restarts: 0,
  last_exit: null,
  keep_alive_ms: 300_000,
  idle_ms: 0,
  vram_used: 0,
};

describe("the cluster", () => {
  const snapshot: ClusterSnapshot = {
    queen: { version: "0.1.0", started_at: new Date(1_000_000).toISOString(), url: "http://127.0.0.1:7833" },
    hives: [
      {
        id: "box",
        url: "http://127.0.0.1:7835",
        version: "0.1.0",
        state: "live",
        last_seen_ms: 1200,
        started_at: new Date(0).toISOString(),
        devices: [
          {
            id: "cpu",
            kind: "cpu",
            name: "Xeon",
            memory_total: 8 * 1024 ** 3,
            memory_used: 2 * 1024 ** 3,
            memory_free: 6 * 1024 ** 3,
            cores: 2,
          },
        ],
        models: [],
      },
    ],
    workers: [worker],
    models: ["stories260k"],
  };

  it("renders hives, devices and workers as tables", () => {
    const text = renderCluster(snapshot, 1_000_000 + 65_000);
    expect(text).toContain("queen http://127.0.0.1:7833 (version 0.1.0, up 1m 5s)");
    expect(text).toMatch(/^box\s+live\s+http:\/\/127\.0\.0\.1:7835\s+0\.1\.0\s+1\.2s ago$/m);
    expect(text).toMatch(/^box\s+cpu\s+Xeon \(2 cores\)\s+6 GiB\s+8 GiB$/m);
    expect(text).toMatch(/^llm-1\s+stories260k\s+llm\s+box\s+cpu\s+Ready\s+1\/4\s+1235\s+12\s+busy \/ 5m 0s$/m);
  });

  it("says why a worker failed, and how to remove it", () => {
    const failed: ClusterWorker = {
      ...worker,
      worker_id: "llm-2",
      status: "Failed",
      routable: false,
      pid: null,
      restarts: 5,
      last_exit: { code: 1, signal: null, at: new Date(0).toISOString(), reason: "exited with code 1" },
    };
    const text = renderWorkers([worker, failed]);
    expect(text).toMatch(/^llm-2\s+stories260k\s+llm\s+box\s+cpu\s+Failed \(unroutable\)/m);
    expect(text.split("\n").at(-1)).toBe(
      "worker llm-2 failed: exited with code 1 (restarted 5 times, then given up); remove it with `rbee worker stop llm-2`",
    );
    expect(renderWorkers([worker])).not.toContain("failed");
  });

  it("says what to do when there is nothing yet", () => {
    const text = renderCluster({ ...snapshot, hives: [], workers: [] });
    expect(text).toContain("no hives: start this machine's with `rbee hive start`");
    expect(renderWorkers([])).toContain("rbee worker spawn");
  });

  it("one line per event", () => {
    const at = new Date(2026, 0, 1, 12, 30, 5).getTime();
    expect(describeClusterEvent({ type: "worker_status", at, worker_id: "llm-1", from: "Ready", status: "Busy" })).toBe(
      "12:30:05 worker llm-1: Ready -> Busy",
    );
    expect(describeClusterEvent({ type: "snapshot", at, cluster: snapshot })).toBe(
      "12:30:05 cluster: 1 hive(s), 1 worker(s)",
    );
    expect(describeClusterEvent({ type: "worker_added", at, worker })).toBe(
      "12:30:05 worker llm-1 added: stories260k on box/cpu (Ready)",
    );
  });
});

describe("daemon helpers", () => {
  it("reduces a JSON log line to its message", () => {
    expect(describeLogLine('{"level":"fatal","msg":"cannot listen","err":{"message":"EADDRINUSE"}}')).toBe(
      "cannot listen: EADDRINUSE",
    );
    expect(describeLogLine("rbee queen: port 7833 is in use")).toBe("port 7833 is in use");
  });
  it("reaches wildcard binds on loopback", () => {
    expect(localUrl("0.0.0.0", 1)).toBe("http://127.0.0.1:1");
    expect(localUrl("::", 1)).toBe("http://[::1]:1");
    expect(localUrl("127.0.0.1", 2)).toBe("http://127.0.0.1:2");
  });
});
