import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isLoopbackUrl, resolveCliConfig } from "../src/config.js";
import { CliError } from "../src/exit-codes.js";
import { hiveListen, queenListen } from "../src/local-cluster.js";

describe("queen URL resolution: --queen-url > RBEE_QUEEN_URL > config.json > default", () => {
  let dir: string;
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
    RBEE_CONFIG_DIR: dir,
    RBEE_CACHE_DIR: dir,
    ...extra,
  });
  const writeConfig = (value: unknown) => writeFileSync(join(dir, "config.json"), JSON.stringify(value));

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "rbee-config-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("defaults to this machine on 7833", () => {
    expect(resolveCliConfig({}, env())).toMatchObject({ queenUrl: "http://127.0.0.1:7833", queenUrlSource: "default" });
  });

  it("the default follows RBEE_QUEEN_PORT", () => {
    expect(resolveCliConfig({}, env({ RBEE_QUEEN_PORT: "9001" })).queenUrl).toBe("http://127.0.0.1:9001");
  });

  it("config.json beats the default", () => {
    writeConfig({ queen_url: "http://gpu-box:7833/" });
    expect(resolveCliConfig({}, env())).toMatchObject({ queenUrl: "http://gpu-box:7833", queenUrlSource: "config" });
  });

  it("RBEE_QUEEN_URL beats config.json", () => {
    writeConfig({ queen_url: "http://gpu-box:7833" });
    expect(resolveCliConfig({}, env({ RBEE_QUEEN_URL: "http://10.0.0.2:7833" }))).toMatchObject({
      queenUrl: "http://10.0.0.2:7833",
      queenUrlSource: "env",
    });
  });

  it("--queen-url beats everything", () => {
    writeConfig({ queen_url: "http://gpu-box:7833" });
    const c = resolveCliConfig({ queenUrl: "http://flag:1" }, env({ RBEE_QUEEN_URL: "http://10.0.0.2:7833" }));
    expect(c).toMatchObject({ queenUrl: "http://flag:1", queenUrlSource: "flag" });
  });

  it("the API key: --api-key > RBEE_API_KEY > config.json", () => {
    writeConfig({ api_key: "from-file" });
    expect(resolveCliConfig({}, env()).apiKey).toBe("from-file");
    expect(resolveCliConfig({}, env({ RBEE_API_KEY: "from-env" })).apiKey).toBe("from-env");
    expect(resolveCliConfig({ apiKey: "from-flag" }, env({ RBEE_API_KEY: "from-env" })).apiKey).toBe("from-flag");
  });

  it("a malformed config file is an error naming the file", () => {
    writeFileSync(join(dir, "config.json"), "{ not json");
    expect(() => resolveCliConfig({}, env())).toThrow(/config\.json is not valid JSON/);
    writeConfig({ queen_url: 42 });
    expect(() => resolveCliConfig({}, env())).toThrow(/"queen_url" must be a non-empty string/);
  });

  it("a URL that is not http(s) is a usage error", () => {
    let caught: unknown;
    try {
      resolveCliConfig({}, env({ RBEE_QUEEN_URL: "ftp://x" }));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CliError);
    expect((caught as CliError).exitCode).toBe(2);
    expect((caught as CliError).message).toMatch(/RBEE_QUEEN_URL 'ftp:\/\/x' must be an http/);
  });

  it("knows which URLs are on this machine", () => {
    expect(isLoopbackUrl("http://127.0.0.1:7833")).toBe(true);
    expect(isLoopbackUrl("http://127.4.5.6")).toBe(true);
    expect(isLoopbackUrl("http://localhost:1")).toBe(true);
    expect(isLoopbackUrl("http://[::1]:7833")).toBe(true);
    expect(isLoopbackUrl("http://192.168.1.20:7833")).toBe(false);
    expect(isLoopbackUrl("http://gpu-box:7833")).toBe(false);
  });
});

describe("where the local daemons listen", () => {
  const keys = ["RBEE_QUEEN_PORT", "RBEE_QUEEN_HOST", "RBEE_HIVE_PORT", "RBEE_HIVE_HOST"] as const;
  const saved = keys.map((k) => process.env[k]);
  afterEach(() => {
    keys.forEach((k, i) => {
      if (saved[i] === undefined) delete process.env[k];
      else process.env[k] = saved[i];
    });
  });

  it("the queen listens where the queen URL points when that is this machine", () => {
    delete process.env.RBEE_QUEEN_PORT;
    delete process.env.RBEE_QUEEN_HOST;
    expect(queenListen({ queenUrl: "http://127.0.0.1:9100" })).toEqual({
      host: "127.0.0.1",
      port: 9100,
      url: "http://127.0.0.1:9100",
    });
    expect(queenListen({ queenUrl: "http://gpu-box:9100" }).port).toBe(7833);
    expect(queenListen({ queenUrl: "http://127.0.0.1:9100" }, { port: 9200 }).port).toBe(9200);
    process.env.RBEE_QUEEN_PORT = "9300";
    expect(queenListen({ queenUrl: "http://127.0.0.1:9100" }).port).toBe(9300);
  });

  it("the hive: --port > RBEE_HIVE_PORT > 7835; 0.0.0.0 is reached on loopback", () => {
    delete process.env.RBEE_HIVE_PORT;
    delete process.env.RBEE_HIVE_HOST;
    expect(hiveListen().port).toBe(7835);
    process.env.RBEE_HIVE_PORT = "9400";
    expect(hiveListen().port).toBe(9400);
    expect(hiveListen({ port: 1, host: "0.0.0.0" })).toEqual({ host: "0.0.0.0", port: 1, url: "http://127.0.0.1:1" });
  });
});
