import { join } from "node:path";
import { rbeeServeCommand } from "@rbee/contract";
import { describe, expect, it } from "vitest";
import { hiveIdFromHostname, resolveHiveOptions } from "../src/hive-options.js";

describe("hive options", () => {
  it("default from the environment, and options win over it", () => {
    const env = {
      RBEE_HIVE_PORT: "7900",
      RBEE_HIVE_HOST: "0.0.0.0",
      RBEE_QUEEN_URL: "http://queen.lan:7833/",
      RBEE_HIVE_ID: "gpu-box",
      RBEE_HEARTBEAT_INTERVAL_MS: "2000",
      RBEE_CACHE_DIR: "/tmp/c",
      RBEE_CONFIG_DIR: "/tmp/k",
      RBEE_BIN: "/opt/rbee/bin/rbee.js",
    };
    const o = resolveHiveOptions({ env });
    expect(o).toMatchObject({
      port: 7900,
      host: "0.0.0.0",
      queenUrl: "http://queen.lan:7833",
      hiveId: "gpu-box",
      heartbeatIntervalMs: 2000,
      cacheDir: "/tmp/c",
      configDir: "/tmp/k",
      rbeeBin: "/opt/rbee/bin/rbee.js",
      workerOrphanTimeoutMs: 60_000,
      readyTimeoutMs: 120_000,
      workerPortStart: 9300,
      restart: { maxRestarts: 5, backoffMs: 1000, maxBackoffMs: 30_000 },
    });
    expect(resolveHiveOptions({ env, port: 0, hiveId: "other", restart: { maxRestarts: 1 } })).toMatchObject({
      port: 0,
      hiveId: "other",
      restart: { maxRestarts: 1, backoffMs: 1000 },
    });
  });

  it("defaults without an environment: port 7835 on loopback, the local queen, the checkout's rbee bin", () => {
    const o = resolveHiveOptions({ env: { XDG_CACHE_HOME: "/xdg/cache" } });
    expect(o).toMatchObject({
      port: 7835,
      host: "127.0.0.1",
      queenUrl: "http://127.0.0.1:7833",
      heartbeatIntervalMs: 5000,
    });
    expect(o.rbeeBin).toMatch(/packages[/\\]cli[/\\]bin[/\\]rbee\.js$/);
    expect(o.cacheDir).toBe(join("/xdg/cache", "rbee"));
  });

  it("refuses malformed values, naming them", () => {
    expect(() => resolveHiveOptions({ env: { RBEE_HIVE_PORT: "http" } })).toThrow(/RBEE_HIVE_PORT="http"/);
    expect(() => resolveHiveOptions({ env: {}, hiveId: "Not OK/../" })).toThrow(/hive id 'Not OK\/..\/'/);
    expect(() => resolveHiveOptions({ env: {}, queenUrl: "ftp://x" })).toThrow(/http/);
  });

  it("makes a safe hive id of the host name", () => {
    expect(hiveIdFromHostname("Gaming-PC.local")).toBe("gaming-pc.local");
    expect(hiveIdFromHostname("My Mac (2)")).toBe("my-mac-2");
    expect(hiveIdFromHostname("---")).toBe("hive");
  });
});

describe("the worker command line", () => {
  it("passes every value as --flag=value, durations in seconds, optional flags only when set", () => {
    const { command, args } = rbeeServeCommand(
      "llm",
      {
        workerId: "-odd-id",
        modelId: "stories260k",
        modelPath: "/models/stories260K.gguf",
        device: "cpu",
        deviceKind: "cpu",
        parallel: 2,
        ctxSize: 512,
        engines: {},
      },
      {
        node: "/usr/bin/node",
        rbeeBin: "/rbee/bin/rbee.js",
        port: 9301,
        host: "127.0.0.1",
        heartbeatUrl: "http://127.0.0.1:7835",
        heartbeatIntervalMs: 5000,
        orphanTimeoutMs: 2500,
        shutdownGraceMs: 10_000,
      },
    );
    expect(command).toBe("/usr/bin/node");
    expect(args).toEqual([
      "/rbee/bin/rbee.js",
      "worker",
      "serve",
      "llm",
      "--model=/models/stories260K.gguf",
      "--model-id=stories260k",
      "--worker-id=-odd-id",
      "--host=127.0.0.1",
      "--port=9301",
      "--device=cpu",
      "--heartbeat-url=http://127.0.0.1:7835",
      "--heartbeat-interval=5",
      "--orphan-timeout=2.5",
      "--shutdown-grace=10",
      "--ctx-size=512",
      "--parallel=2",
    ]);
  });
});
