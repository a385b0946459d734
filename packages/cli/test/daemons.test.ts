import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { getJson, startRbee, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  expectNoProcessesLeft,
  expectOneLine,
  freePort,
  pidAlive,
  pidFromFile,
  type Sandbox,
  sandbox,
  sandboxProcesses,
} from "./helpers.js";

describe("rbee up, status, key and down", () => {
  let s: Sandbox;
  beforeAll(async () => {
    s = await sandbox();
  });
  afterAll(async () => {
    await s.dispose();
  }, 90_000);

  it("up starts the queen and the hive and waits until the queen knows the hive", async () => {
    const r = await s.rbee(["up"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^queen ${s.queenUrl}  pid \\d+$`, "m"));
    expect(r.stdout).toMatch(new RegExp(`^hive  http://127.0.0.1:${s.hivePort}  pid \\d+  id \\S+$`, "m"));
    const cluster = await getJson(`${s.queenUrl}/v1/cluster`);
    expect(cluster.body.hives).toHaveLength(1);
    expect(existsSync(join(s.cacheDir, "logs", "queen.log"))).toBe(true);
    expect(existsSync(join(s.cacheDir, "logs", "hive.log"))).toBe(true);
  });

  it("up again finds both running and starts nothing", async () => {
    const before = [pidFromFile(s.cacheDir, "queen"), pidFromFile(s.cacheDir, "hive")];
    const r = await s.rbee(["up", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const up = JSON.parse(r.stdout);
    expect(up.queen).toMatchObject({ started: false, pid: before[0], url: s.queenUrl });
    expect(up.hive).toMatchObject({ started: false, pid: before[1] });
    const again = await s.rbee(["queen", "start"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`queen already running at ${s.queenUrl} (pid ${before[0]})\n`);
  });

  it("queen status and hive status report running, pid, version and uptime", async () => {
    const q = await s.rbee(["queen", "status", "--json"]);
    expect(q.code, q.stderr).toBe(0);
    expect(JSON.parse(q.stdout)).toMatchObject({
      name: "queen",
      running: true,
      url: s.queenUrl,
      pid: pidFromFile(s.cacheDir, "queen"),
      version: expect.any(String),
      uptime_ms: expect.any(Number),
      managed: true,
    });
    const h = await s.rbee(["hive", "status"]);
    expect(h.code, h.stderr).toBe(0);
    expect(h.stdout).toMatch(/^hive: running$/m);
    expect(h.stdout).toMatch(/^ {2}id {7}\S+$/m);
    expect(h.stdout).toMatch(/^ {2}uptime {3}\S+/m);
  });

  it("status shows the hive with its devices", async () => {
    const r = await s.rbee(["status"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^HIVE\s+STATE\s+URL\s+VERSION\s+LAST SEEN$/m);
    expect(r.stdout).toMatch(/^\S+\s+live\s+http:\/\/127\.0\.0\.1:\d+/m);
    expect(r.stdout).toMatch(/^\S+\s+cpu\s+.+\s+[\d.]+ [KMGT]iB\s+[\d.]+ [KMGT]iB$/m);
    expect(r.stdout).toContain("no workers");
  });

  it("status --watch prints one line per event off a terminal, and Ctrl+C ends it with exit 0", async () => {
    const child = startRbee(["status", "--watch"], { env: s.env });
    await child.waitForLine(/cluster: 1 hive\(s\), 0 worker\(s\)/, 20_000);
    child.kill("SIGINT");
    expect((await child.waitForExit(10_000)).code).toBe(0);
    const json = startRbee(["status", "--watch", "--json"], { env: s.env });
    const line = await json.waitForLine(/^\{"type":"snapshot".*\}$/m, 20_000);
    expect(JSON.parse(line[0]).cluster.hives).toHaveLength(1);
    json.kill("SIGINT");
    expect((await json.waitForExit(10_000)).code).toBe(0);
  });

  it("key create, ls and rm: a round trip; keys then guard the API", async () => {
    const created = await s.rbee(["key", "create", "--name", "ci"]);
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^rbee_sk_\S+$/);
    expect(created.stderr).toMatch(/shown only this once/);

    const ls = await s.rbee(["key", "ls", "--json"]);
    expect(ls.code, ls.stderr).toBe(0);
    const keys = JSON.parse(ls.stdout) as Array<{ id: string; name: string; prefix: string }>;
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ name: "ci" });
    expect(key.startsWith(keys[0]?.prefix ?? "?")).toBe(true);
    expect(ls.stdout).not.toContain(key);
    const table = await s.rbee(["key", "ls"]);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+PREFIX\s+CREATED$/m);

    // with a key in place, the API wants it: refused without, served with --api-key or RBEE_API_KEY
    const withKey = await s.rbee(["--api-key", key, "worker", "ls", "--json"]);
    expect(withKey.code, withKey.stderr).toBe(0);
    const viaEnv = await s.rbee(["worker", "ls", "--json"], { env: { RBEE_API_KEY: key } });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    const wrong = await s.rbee(["worker", "ls"], { env: { RBEE_API_KEY: "rbee_sk_wrong" } });
    expect(wrong.code).toBe(1);
    expect(expectOneLine(wrong.stderr)).toMatch(/incorrect API key/);

    // --admin makes a key that may manage keys (the dashboard's Keys view); plain keys may not
    const admin = await s.rbee(["key", "create", "--name", "admin", "--admin", "--json"]);
    expect(admin.code, admin.stderr).toBe(0);
    expect(JSON.parse(admin.stdout)).toMatchObject({ name: "admin", admin: true });
    const adminKeys = await fetch(`${s.queenUrl}/v1/keys`, {
      headers: { authorization: `Bearer ${JSON.parse(admin.stdout).key}` },
    });
    expect(adminKeys.status).toBe(200);
    const plainKeys = await fetch(`${s.queenUrl}/v1/keys`, { headers: { authorization: `Bearer ${key}` } });
    expect(plainKeys.status).toBe(403);
    expect((await s.rbee(["key", "rm", JSON.parse(admin.stdout).id])).code).toBe(0);

    const id = keys[0]?.id ?? "";
    const rm = await s.rbee(["key", "rm", id]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toBe(`removed API key ${id}\n`);
    expect(JSON.parse((await s.rbee(["key", "ls", "--json"])).stdout)).toEqual([]);
    const again = await s.rbee(["key", "rm", id]);
    expect(again.code).toBe(4);
    expectOneLine(again.stderr);
  });

  it("down stops both and leaves no process behind; a second down is a no-op", async () => {
    const pids = [pidFromFile(s.cacheDir, "queen"), pidFromFile(s.cacheDir, "hive")];
    const r = await s.rbee(["down"]);
    expect(r.code, r.stderr).toBe(0);
    for (const pid of pids) expect(pidAlive(pid ?? -1)).toBe(false);
    await expectNoProcessesLeft(s.cacheDir);
    const again = await s.rbee(["down"]);
    expect(again.stdout).toBe("hive is not running\nqueen is not running\n");
  });
});

describe("rbee queen start --foreground", () => {
  let s: Sandbox;
  beforeAll(async () => {
    s = await sandbox();
  });
  afterAll(async () => {
    await s.dispose();
  });

  it("runs in this process with a pid file, is seen by status, and exits 0 on SIGTERM", async () => {
    const port = await freePort();
    const child = startRbee(["queen", "start", "--foreground", "--port", String(port)], { env: s.env });
    const url = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => ((await getJson(`${url}/health`)).status === 200 ? true : undefined),
      20_000,
      "the queen",
    );
    const pidFile = join(s.cacheDir, "run", "queen.pid");
    expect(JSON.parse(readFileSync(pidFile, "utf8"))).toMatchObject({ pid: child.pid, url });
    const status = await s.rbee(["--queen-url", url, "queen", "status", "--json"]);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: true, pid: child.pid });
    // a second one is refused while the first runs
    const second = await s.rbee(["queen", "start", "--foreground", "--port", "0"]);
    expect(second.code).toBe(1);
    expect(expectOneLine(second.stderr)).toMatch(new RegExp(`a queen is already running \\(pid ${child.pid}`));
    child.kill("SIGTERM");
    expect(await child.waitForExit(15_000)).toEqual({ code: 0, signal: null });
    expect(existsSync(pidFile)).toBe(false);
    expect(sandboxProcesses(s.cacheDir)).toEqual([]);
  });
});
