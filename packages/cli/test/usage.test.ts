import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLine, heavyModulesIn, rbeeLoadedModules, type Sandbox, sandbox } from "./helpers.js";

// The CLI without a cluster: usage errors, an unreachable queen, stale pid files, a start that fails.
describe("rbee without a running queen", () => {
  let s: Sandbox;
  beforeAll(async () => {
    s = await sandbox();
  });
  afterAll(async () => {
    await s.dispose();
  });

  it("--help lists the commands and exits 0", async () => {
    const r = await s.rbee(["--help"]);
    expect(r.code).toBe(0);
    for (const cmd of ["up", "down", "status", "infer", "chat", "worker", "key", "queen", "hive"]) {
      expect(r.stdout).toMatch(new RegExp(`^  ${cmd}\\b`, "m"));
    }
    const sub = await s.rbee(["infer", "--help"]);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain("--max-tokens");
  });

  it("--version loads no command, and a command's --help only that command: no schemas, servers or engines", async () => {
    const version = await rbeeLoadedModules(s, ["--version"]);
    expect(version.result.code, version.result.stderr).toBe(0);
    expect(version.result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(version.modules.some((m) => m.endsWith("/cli/dist/main.js"))).toBe(true); // the hook saw the CLI
    expect(version.modules.filter((m) => m.includes("/cli/dist/commands/"))).toEqual([]);
    expect(heavyModulesIn(version.modules)).toEqual([]);
    const help = await rbeeLoadedModules(s, ["infer", "--help"]);
    expect(help.result.code, help.result.stderr).toBe(0);
    expect(help.result.stdout).toContain("--max-tokens");
    expect(help.modules.filter((m) => /\/cli\/dist\/commands\/(?!infer|sampling)/.test(m))).toEqual([]);
    expect(heavyModulesIn(help.modules)).toEqual([]);
  });

  it.each([
    [["infer", "-m", "x", "-p", "y", "--bogus"], /unknown option '--bogus'/],
    [["infer", "-p", "y"], /required option '-m, --model <model>' not specified/],
    [["infer", "-m", "x", "-p", "y", "--max-tokens", "zero"], /--max-tokens <n>' argument 'zero' is invalid/],
    [["infer", "-m", "x", "-p", "y", "--temperature", "11"], /--temperature/],
    [["infer", "-m", "x", "-p", "y", "--keep-alive", "1 day"], /--keep-alive/],
    [["worker", "spawn", "-m", "x", "--device", "gpu0"], /cuda:N/],
    [["no-such-command"], /unknown command 'no-such-command'/],
    [["--queen-url", "ftp://x", "status"], /--queen-url/],
  ])("a bad command line %j is a usage error: one line, exit 2", async (args, message) => {
    const r = await s.rbee(args);
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(message);
    expect(r.stdout).toBe("");
  });

  it.each([
    [["status"]],
    [["status", "--watch"]],
    [["worker", "ls"]],
    [["worker", "stop", "llm-1"]],
    [["infer", "-m", "x", "-p", "y", "--no-autostart"]],
  ])("%j with the queen unreachable: one line naming the URL, exit 3", async (args) => {
    const r = await s.rbee(args);
    expect(r.code).toBe(3);
    expect(expectOneLine(r.stderr)).toBe(
      `rbee: cannot reach the queen at ${s.queenUrl}: connection refused (is it running? start it with \`rbee up\`)`,
    );
  });

  it("key management needs the cluster token, and says where it is looked for", async () => {
    const r = await s.rbee(["key", "ls"]);
    expect(r.code).toBe(1);
    expect(expectOneLine(r.stderr)).toMatch(/no cluster token in .*cluster-token \(or RBEE_CLUSTER_TOKEN\)/);
  });

  it("status of daemons that do not run: exit 3; down and stop are fine with it", async () => {
    const q = await s.rbee(["queen", "status"]);
    expect(q.code).toBe(3);
    expect(q.stdout).toMatch(/^queen: not running$/m);
    const h = await s.rbee(["hive", "status", "--json"]);
    expect(h.code).toBe(3);
    expect(JSON.parse(h.stdout)).toMatchObject({ name: "hive", running: false, pid: null });
    const down = await s.rbee(["down"]);
    expect(down.code).toBe(0);
    expect(down.stdout).toBe("hive is not running\nqueen is not running\n");
  });

  it("a stale pid file (the process is gone) is cleaned up silently", async () => {
    const pidFile = join(s.cacheDir, "run", "queen.pid");
    mkdirSync(join(s.cacheDir, "run"), { recursive: true });
    writeFileSync(
      pidFile,
      JSON.stringify({ pid: 2 ** 22 + 12345, url: s.queenUrl, started_at: new Date().toISOString() }),
    );
    const stop = await s.rbee(["queen", "stop"]);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toBe("queen is not running\n");
    expect(stop.stderr).toBe("");
    expect(existsSync(pidFile)).toBe(false);
  });

  describe("a queen that cannot start", () => {
    let blocker: Server;
    let port: number;
    beforeAll(async () => {
      blocker = createServer((socket) => socket.destroy());
      await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
      port = (blocker.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((resolve) => blocker.close(() => resolve())));

    it("fails early with the reason from its log, in one line, and leaves no pid file", async () => {
      const r = await s.rbee(["queen", "start", "--port", String(port)]);
      expect(r.code).toBe(1);
      const line = expectOneLine(r.stderr);
      expect(line).toMatch(/^rbee: the queen exited with code 1 before it answered .*\/health: /);
      expect(line).toMatch(new RegExp(`port ${port} is in use`));
      expect(line).toContain(join(s.cacheDir, "logs", "queen.log"));
      expect(existsSync(join(s.cacheDir, "run", "queen.pid"))).toBe(false);
    });
  });
});
