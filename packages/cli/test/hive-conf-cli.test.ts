import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getJson, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLine, type Sandbox, sandbox } from "./helpers.js";

/** `rbee hive add|ls|rm` on hives.conf through the real CLI, and `rbee hive start --advertise-url`. */
describe("rbee hive add, ls, rm", () => {
  let s: Sandbox;
  let file: string;
  beforeAll(async () => {
    s = await sandbox();
    s.env.RBEE_SSH_CONFIG = join(s.configDir, "no-ssh-config");
    file = join(s.configDir, "hives.conf");
    mkdirSync(s.configDir, { recursive: true });
  });
  afterAll(async () => {
    await s.dispose();
  }, 90_000);

  it("ls with no hives.conf says how to add one", async () => {
    const r = await s.rbee(["hive", "ls"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`no hives in ${file}; add one with \`rbee hive add <alias> --host <address>\`\n`);
  });

  it("add writes entries after the user's own lines, ls shows them as a table and as JSON", async () => {
    const mine = "# my machines\nHost old-box   # kept as it is\n  HostName 10.0.0.9\n";
    writeFileSync(file, mine);
    const a = await s.rbee(["hive", "add", "gpu-box", "--host", "192.168.1.20", "--user", "me", "--hive-port", "7900"]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe(
      `added gpu-box to ${file}: ssh me@192.168.1.20, hive http://192.168.1.20:7900\nnext: rbee hive install gpu-box, then rbee hive start gpu-box\n`,
    );
    const b = await s.rbee([
      "hive",
      "add",
      "mac",
      "--host",
      "mac.local",
      "--port",
      "2222",
      "--remote-queen-url",
      "http://192.168.1.10:7833",
      "--set-env",
      "RBEE_DEVICES=cpu",
    ]);
    expect(b.code, b.stderr).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(
      `${mine}\nHost gpu-box\n    HostName 192.168.1.20\n    User me\n    HivePort 7900\n\nHost mac\n    HostName mac.local\n    Port 2222\n    QueenUrl http://192.168.1.10:7833\n    SetEnv RBEE_DEVICES=cpu\n`,
    );
    const ls = await s.rbee(["hive", "ls"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/^ALIAS\s+SSH\s+HIVE URL\s+HIVE ID\s+QUEEN$/m);
    expect(ls.stdout).toMatch(/^old-box\s+10\.0\.0\.9\s+http:\/\/10\.0\.0\.9:7835\s+old-box\s+\?$/m);
    expect(ls.stdout).toMatch(/^gpu-box\s+me@192\.168\.1\.20\s+http:\/\/192\.168\.1\.20:7900\s+gpu-box\s+\?$/m);
    expect(ls.stdout).toMatch(/^mac\s+mac\.local:2222\s+http:\/\/mac\.local:7835\s+mac\s+\?$/m);
    expect(ls.stdout).toContain(`(queen at ${s.queenUrl} not reachable: QUEEN shows ?)`);
    const json = JSON.parse((await s.rbee(["hive", "ls", "--json"])).stdout);
    expect(json.map((h: { alias: string }) => h.alias)).toEqual(["old-box", "gpu-box", "mac"]);
    expect(json[2]).toMatchObject({
      ssh_port: 2222,
      queen_url: "http://192.168.1.10:7833",
      set_env: { RBEE_DEVICES: "cpu" },
    });
  });

  it("add refuses an alias that exists, a missing address, and bad values (exit 2)", async () => {
    const again = await s.rbee(["hive", "add", "mac", "--host", "x"]);
    expect(again.code).toBe(2);
    expect(expectOneLine(again.stderr)).toMatch(
      /'mac' is already in .*hives\.conf \(line 10\); edit it there, or remove it first/,
    );
    const bare = await s.rbee(["hive", "add", "nuc"]);
    expect(bare.code).toBe(2);
    expect(expectOneLine(bare.stderr)).toMatch(
      /give nuc's address with --host .*or take it from .* with --from-ssh-config/,
    );
    const port = await s.rbee(["hive", "add", "nuc", "--host", "x", "--hive-port", "99999"]);
    expect(port.code).toBe(2);
    const env = await s.rbee(["hive", "add", "nuc", "--host", "x", "--set-env", "nope"]);
    expect(expectOneLine(env.stderr)).toMatch(/--set-env takes NAME=value/);
    const ssh = await s.rbee(["hive", "add", "nuc", "--from-ssh-config"]);
    expect(ssh.code).toBe(4);
    expect(expectOneLine(ssh.stderr)).toMatch(/no 'Host nuc' in .*no-ssh-config \(it does not exist\)/);
  });

  it("rm removes one entry and keeps the rest of the file", async () => {
    const r = await s.rbee(["hive", "rm", "gpu-box"]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(file, "utf8")).toBe(
      "# my machines\nHost old-box   # kept as it is\n  HostName 10.0.0.9\n\nHost mac\n    HostName mac.local\n    Port 2222\n    QueenUrl http://192.168.1.10:7833\n    SetEnv RBEE_DEVICES=cpu\n",
    );
    const missing = await s.rbee(["hive", "rm", "gpu-box"]);
    expect(missing.code).toBe(4);
    expect(expectOneLine(missing.stderr)).toMatch(/no hive 'gpu-box' in .* \(it has old-box, mac\)/);
  });

  it("a malformed hives.conf stops hive commands with its file and line", async () => {
    const before = readFileSync(file, "utf8");
    writeFileSync(file, `${before}  Port 70000\n`);
    const r = await s.rbee(["hive", "ls"]);
    expect(r.code).toBe(1);
    expect(expectOneLine(r.stderr)).toBe(`rbee: ${file}:10: Port: expected a port from 1 to 65535, got '70000'`);
    writeFileSync(file, before);
  });

  it("flags for this machine's hive are refused with an alias, naming the hives.conf keyword", async () => {
    const r = await s.rbee(["hive", "start", "mac", "--port", "7000"]);
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toBe(
      "rbee: --port is for this machine's hive; for mac, write 'HivePort ...' under Host mac in hives.conf",
    );
  });

  it("a loopback queen URL is not handed to another machine", async () => {
    const r = await s.rbee(["hive", "start", "old-box"]);
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(
      /the queen URL http:\/\/127\.0\.0\.1:\d+ is a loopback address, which on old-box \(10\.0\.0\.9\) is old-box itself: write 'QueenUrl http:\/\/.+' under Host old-box in hives\.conf/,
    );
  });

  it("rbee hive start --advertise-url: the queen knows the local hive by that URL", async () => {
    expect((await s.rbee(["queen", "start"])).code).toBe(0);
    const url = `http://localhost:${s.hivePort}`;
    const r = await s.rbee(["hive", "start", "--advertise-url", url]);
    expect(r.code, r.stderr).toBe(0);
    const hive = await waitFor(async () => {
      const cluster = await getJson(`${s.queenUrl}/v1/cluster`);
      return (cluster.body.hives as Array<{ url: string; state: string }>).find((h) => h.state === "live");
    }, 20_000);
    expect(hive.url).toBe(url);
  });
});
