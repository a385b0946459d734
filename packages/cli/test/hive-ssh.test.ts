import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChildHandle, getJson, requireOrSkip, requireStoriesModel, STORIES_GREEDY_PREFIX } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOneLine, freePort, type Sandbox, sandbox } from "./helpers.js";

/**
 * Enrolling a machine over a real ssh: the test runs its own OpenSSH server (Debian's
 * openssh-server, installed by .ci/run) on a loopback port, with a throw-away host key, a
 * throw-away user and key; the real CLI adds that "machine" to hives.conf, installs rbee there,
 * starts its hive, which registers with a real queen, and serves a real inference on stories260K.
 * ssh reads only the test's own config and known_hosts (RBEE_SSH_CONFIG), never ~/.ssh.
 */
const SSHD = "/usr/sbin/sshd";
const VERSION = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
  .version;

function sh(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** The processes a user runs (from /proc), to check that the hive runs as that user and to clean up. */
function processesOf(uid: number): Array<{ pid: number; cmdline: string }> {
  const out: Array<{ pid: number; cmdline: string }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, "utf8");
      if (Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) !== uid || /^State:\s+Z/m.test(status)) continue;
      out.push({ pid: Number(entry), cmdline: readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ") });
    } catch {}
  }
  return out;
}

/**
 * This file runs its own sshd as a throw-away user: it needs openssh-server and root. Without them
 * (a newcomer's machine) it is skipped with one line saying so; under CI=true they are required.
 */
const SSH_READY =
  requireOrSkip(
    existsSync(SSHD),
    "the ssh hive tests (packages/cli/test/hive-ssh.test.ts)",
    `${SSHD} is missing: install openssh-server (apt-get install -y openssh-server)`,
  ) &&
  requireOrSkip(
    process.getuid?.() === 0,
    "the ssh hive tests (packages/cli/test/hive-ssh.test.ts)",
    `they create a throw-away user for their own sshd, which needs root, and this runs as uid ${process.getuid?.()}: run them as root`,
  );

describe.skipIf(!SSH_READY)("hives over ssh (a real sshd on loopback, a throw-away user)", () => {
  let s: Sandbox;
  let root: string;
  let user: string;
  let uid: number;
  let home: string;
  let sshd: ChildHandle | undefined;
  let sshPort: number;
  let hivePort: number;
  let model: string;
  const alias = "sshbox";

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), "rbee-ssh-test-"));
    chmodSync(root, 0o755); // the test user reads the model from here
    user = `rbeessh${randomBytes(4).toString("hex")}`;
    sh("useradd", ["-m", "-p", "*", "-s", "/bin/sh", user]);
    uid = Number(sh("id", ["-u", user]).trim());
    home = sh("getent", ["passwd", user]).split(":")[5] ?? "";

    // keys: the server's host key, the user's login key, and a key the server does not accept
    sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(root, "host_key")]);
    sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(root, "user_key")]);
    sh("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(root, "stranger_key")]);
    mkdirSync(join(home, ".ssh"), { mode: 0o700 });
    copyFileSync(join(root, "user_key.pub"), join(home, ".ssh", "authorized_keys"));
    sh("chown", ["-R", `${user}:`, join(home, ".ssh")]);

    sshPort = await freePort();
    hivePort = await freePort();
    writeFileSync(
      join(root, "sshd_config"),
      [
        `Port ${sshPort}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${join(root, "host_key")}`,
        `PidFile ${join(root, "sshd.pid")}`,
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        `AllowUsers ${user}`,
        "PermitRootLogin no",
        "PrintMotd no",
      ].join("\n"),
    );
    mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // sshd's privilege separation directory
    sshd = new ChildHandle(SSHD, ["-D", "-e", "-f", join(root, "sshd_config")]);
    await sshd.waitForLine(/Server listening on 127\.0\.0\.1/, 20_000);

    // what ssh reads instead of ~/.ssh: this Host entry, and a known_hosts of its own
    writeFileSync(
      join(root, "ssh_config"),
      [
        `Host ${alias}`,
        "  HostName 127.0.0.1",
        `  Port ${sshPort}`,
        `  User ${user}`,
        `  IdentityFile ${join(root, "user_key")}`,
        "Host *",
        "  IdentitiesOnly yes",
        "  StrictHostKeyChecking accept-new",
        `  UserKnownHostsFile ${join(root, "known_hosts")}`,
        "  GlobalKnownHostsFile /dev/null",
      ].join("\n"),
    );
    model = join(root, "stories260K.gguf");
    copyFileSync(requireStoriesModel(), model);
    chmodSync(model, 0o644);

    s = await sandbox();
    s.env.RBEE_SSH_CONFIG = join(root, "ssh_config");
    const q = await s.rbee(["queen", "start"]);
    expect(q.code, q.stderr).toBe(0);
  });

  afterAll(async () => {
    await s?.rbee(["hive", "stop", alias], { timeoutMs: 60_000 }).catch(() => undefined);
    await s?.dispose();
    await sshd?.stop(5000);
    if (uid !== undefined) {
      for (const p of processesOf(uid)) {
        try {
          process.kill(p.pid, "SIGKILL");
        } catch {}
      }
    }
    if (user) {
      try {
        sh("userdel", ["-r", user]);
      } catch {} // userdel -r complains about the missing mail spool, and still removes user and home
    }
    if (root) rmSync(root, { recursive: true, force: true });
  }, 120_000);

  it("hive add --from-ssh-config writes the entry into hives.conf; ls lists it", async () => {
    const r = await s.rbee([
      "hive",
      "add",
      alias,
      "--from-ssh-config",
      "--hive-port",
      String(hivePort),
      "--set-env",
      "RBEE_HEARTBEAT_INTERVAL_MS=500",
      "--set-env",
      `RBEE_WORKER_PORT_START=${20_000 + Math.floor(Math.random() * 30_000)}`,
      // the hive takes path models only from directories its owner allows (docs/security.md)
      "--set-env",
      `RBEE_MODELS_DIRS=${root}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const conf = readFileSync(join(s.configDir, "hives.conf"), "utf8");
    expect(conf).toContain(
      `Host ${alias}\n    HostName 127.0.0.1\n    User ${user}\n    Port ${sshPort}\n    IdentityFile ${join(root, "user_key")}\n    HivePort ${hivePort}\n`,
    );
    const ls = await s.rbee(["hive", "ls", "--json"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(JSON.parse(ls.stdout)).toEqual([
      expect.objectContaining({
        alias,
        host_name: "127.0.0.1",
        hive_id: alias,
        advertise_url: `http://127.0.0.1:${hivePort}`,
        queen_state: "unknown",
      }),
    ]);
  });

  it("a machine this one cannot log in to fails with what, why and what to do", async () => {
    const add = await s.rbee([
      "hive",
      "add",
      "stranger",
      "--host",
      "127.0.0.1",
      "--port",
      String(sshPort),
      "--user",
      user,
      "--identity-file",
      join(root, "stranger_key"),
    ]);
    expect(add.code, add.stderr).toBe(0);
    const r = await s.rbee(["hive", "install", "stranger", "--quiet"]);
    expect(r.code).toBe(3);
    expect(expectOneLine(r.stderr)).toMatch(
      new RegExp(
        `^rbee: cannot log in to stranger \\(${user}@127\\.0\\.0\\.1:${sshPort}\\): no key was accepted .*Permission denied.*ssh-copy-id -p ${sshPort} ${user}@127\\.0\\.0\\.1.*IdentityFile \\(and User\\) under Host stranger in hives\\.conf \\(line \\d+\\)$`,
      ),
    );
    const unknown = await s.rbee(["hive", "start", "nowhere"]);
    expect(unknown.code).toBe(4);
    expect(expectOneLine(unknown.stderr)).toMatch(/no hive 'nowhere' in .*hives\.conf \(it has sshbox, stranger\)/);
    const rm = await s.rbee(["hive", "rm", "stranger"]);
    expect(rm.code, rm.stderr).toBe(0);
  });

  it("a node that is too old, or a machine of another platform, is refused before anything is copied", async () => {
    const fakeNode = (name: string, output: string) => {
      const path = join(root, name);
      writeFileSync(path, `#!/bin/sh\nprintf '${output}\\n'\n`, { mode: 0o755 });
      return path;
    };
    const cases: Array<[string, string, RegExp]> = [
      [
        "old-node",
        fakeNode("node18", "node_version=18.19.0\\nplatform=linux\\narch=x64"),
        /^rbee: old-node has Node\.js 18\.19\.0 \(\S+\); rbee needs 20\.10 or newer: upgrade Node\.js there, or point NodePath under Host old-node in hives\.conf at a newer one$/,
      ],
      [
        "a-mac",
        fakeNode("node-mac", "node_version=22.1.0\\nplatform=darwin\\narch=arm64"),
        /^rbee: a-mac is darwin-arm64 and this machine is linux-x64: .*Run `rbee hive install a-mac` from a darwin-arm64 machine/,
      ],
      [
        "no-node",
        "/nonexistent/node",
        /^rbee: \/nonexistent\/node on no-node does not run \(NodePath in hives\.conf, line \d+\)/,
      ],
    ];
    for (const [name, node, message] of cases) {
      const add = await s.rbee([
        "hive",
        "add",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        String(sshPort),
        "--user",
        user,
        "--identity-file",
        join(root, "user_key"),
        "--node",
        node,
      ]);
      expect(add.code, add.stderr).toBe(0);
      const r = await s.rbee(["hive", "install", name, "--quiet"]);
      expect(r.code).toBe(1);
      expect(expectOneLine(r.stderr)).toMatch(message);
      expect((await s.rbee(["hive", "rm", name])).code).toBe(0);
    }
    expect(existsSync(join(home, ".local/share/rbee"))).toBe(false);
  });

  it("start before install says to install", async () => {
    const r = await s.rbee(["hive", "start", alias, "--quiet"]);
    expect(r.code).toBe(4);
    expect(expectOneLine(r.stderr)).toBe(
      `rbee: cannot start the hive on ${alias}: rbee there is not installed; install it with \`rbee hive install ${alias}\``,
    );
  });

  it("install copies this rbee there, with narration, leaving out what it does not need", async () => {
    const r = await s.rbee(["hive", "install", alias], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^rbee ${VERSION} installed on ${alias} in \\S+: \\d+ files, [\\d.]+ MiB \\([\\d.]+ MiB sent\\)$`,
        "m",
      ),
    );
    expect(r.stderr).toMatch(
      new RegExp(`^${alias}: node \\d+\\.\\d+\\.\\d+ \\(\\S+\\) on linux-x64, rbee not installed$`, "m"),
    );
    expect(r.stderr).toMatch(/^packing rbee \S+: \d+ files, [\d.]+ MiB \(llama\.cpp builds: linux-x64\)$/m);
    expect(r.stderr).toMatch(new RegExp(`^sending rbee to ${alias}: 100% `, "m")); // plain lines off a terminal
    const dir = join(home, ".local/share/rbee", VERSION);
    expect(statSync(join(dir, "packages/cli/bin/rbee.js")).uid).toBe(uid);
    expect(readFileSync(join(home, ".local/share/rbee/bin/rbee"), "utf8")).toContain(
      `${home}/.local/share/rbee/current/packages/cli/bin/rbee.js`,
    );
    const manifest = JSON.parse(readFileSync(join(home, ".local/share/rbee/current/rbee-install.json"), "utf8"));
    expect(manifest).toMatchObject({ version: VERSION, llama_builds: ["@node-llama-cpp/linux-x64"] });
    const nodeModules = readdirSync(join(dir, "node_modules/@node-llama-cpp"));
    expect(nodeModules).toEqual(["linux-x64"]);
    expect(existsSync(join(dir, "node_modules/node-llama-cpp/llama/gitRelease.bundle"))).toBe(false);
    expect(existsSync(join(dir, "packages/cli/src"))).toBe(false);
    expect(existsSync(join(dir, "node_modules/typescript"))).toBe(false);
    expect(manifest.bytes).toBeLessThan(100 * 1024 * 1024);
  });

  it("start runs the hive there, with the cluster token in a 0600 file, and the queen sees it at its advertised URL", async () => {
    const r = await s.rbee(["hive", "start", alias]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      `hive ${alias} started (http://127.0.0.1:${hivePort}, id ${alias}, queen ${s.queenUrl}); the queen sees it\n`,
    );
    const cluster = await getJson(`${s.queenUrl}/v1/cluster`);
    expect(cluster.body.hives).toEqual([
      expect.objectContaining({ id: alias, state: "live", url: `http://127.0.0.1:${hivePort}`, version: VERSION }),
    ]);
    const tokenFile = join(home, ".config/rbee/cluster-token");
    const st = statSync(tokenFile);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.uid).toBe(uid);
    const token = readFileSync(join(s.configDir, "cluster-token"), "utf8").trim();
    expect(readFileSync(tokenFile, "utf8").trim()).toBe(token);
    const procs = processesOf(uid);
    expect(procs.some((p) => /\.local\/share\/rbee\/.*rbee\.js hive start --foreground/.test(p.cmdline))).toBe(true);
    expect(procs.filter((p) => p.cmdline.includes(token))).toEqual([]);
  });

  it("start again finds it running and starts nothing", async () => {
    const r = await s.rbee(["hive", "start", alias, "--quiet"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`hive ${alias} already running (http://127.0.0.1:${hivePort}, id ${alias})\n`);
    expect(processesOf(uid).filter((p) => p.cmdline.includes("hive start --foreground"))).toHaveLength(1);
  });

  it("status shows that it runs, its version against ours, and that the queen sees it", async () => {
    const r = await s.rbee(["hive", "status", alias]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^hive ${alias}: running$`, "m"));
    expect(r.stdout).toContain(`  rbee    ${VERSION} (same as this rbee)\n`);
    expect(r.stdout).toMatch(
      new RegExp(`^ {2}queen {3}live, last heartbeat .* ago, at http://127\\.0\\.0\\.1:${hivePort}`, "m"),
    );
    const json = JSON.parse((await s.rbee(["hive", "status", alias, "--json"])).stdout);
    expect(json).toMatchObject({ running: true, version_ok: true, queen: { state: "live" } });
    const ls = await s.rbee(["hive", "ls"]);
    expect(ls.stdout).toMatch(
      new RegExp(`^${alias}\\s+${user}@127\\.0\\.0\\.1:${sshPort}\\s+\\S+\\s+${alias}\\s+live$`, "m"),
    );
  });

  it("a real inference through the queen runs on that hive", async () => {
    const r = await s.rbee(
      ["infer", "-m", model, "-p", "Once upon a time", "--max-tokens", "16", "--temperature", "0", "--quiet"],
      { timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.startsWith(STORIES_GREEDY_PREFIX)).toBe(true);
    const cluster = await getJson(`${s.queenUrl}/v1/cluster`);
    expect(cluster.body.workers).toEqual([expect.objectContaining({ hive_id: alias, model: "stories260k" })]);
    expect(processesOf(uid).some((p) => p.cmdline.includes("worker serve llm"))).toBe(true);
  });

  it("a version there that is not ours is reported, with the fix", async () => {
    const file = join(home, ".local/share/rbee/current/rbee-install.json");
    const original = readFileSync(file, "utf8");
    writeFileSync(file, original.replace(`"version":"${VERSION}"`, '"version":"0.0.1"'));
    try {
      const r = await s.rbee(["hive", "status", alias]);
      expect(r.stdout).toContain(
        `  rbee    0.0.1, but this rbee is ${VERSION}; update it with \`rbee hive install ${alias}\`\n`,
      );
      const start = await s.rbee(["hive", "start", alias, "--quiet"]);
      expect(start.code).toBe(1);
      expect(expectOneLine(start.stderr)).toContain(
        `rbee there is 0.0.1, but this rbee is ${VERSION}; update it with \`rbee hive install ${alias}\``,
      );
    } finally {
      writeFileSync(file, original);
    }
  });

  it("stop ends the hive and its workers there; status then says it does not run (exit 3)", async () => {
    const r = await s.rbee(["hive", "stop", alias], { timeoutMs: 90_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^${alias}: hive stopped \\(pid \\d+\\)\\n$`));
    expect(processesOf(uid).filter((p) => p.cmdline.includes("rbee.js"))).toEqual([]);
    const status = await s.rbee(["hive", "status", alias]);
    expect(status.code).toBe(3);
    expect(status.stdout).toMatch(new RegExp(`^hive ${alias}: not running$`, "m"));
  });

  it("uninstall removes rbee there; the models and config stay", async () => {
    const r = await s.rbee(["hive", "uninstall", alias]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${alias}: hive is not running\n${alias}: removed ${home}/.local/share/rbee\n`);
    expect(existsSync(join(home, ".local/share/rbee"))).toBe(false);
    expect(existsSync(join(home, ".config/rbee/cluster-token"))).toBe(true);
    const status = await s.rbee(["hive", "status", alias]);
    expect(status.code).toBe(3);
    expect(status.stdout).toMatch(new RegExp(`^hive ${alias}: not installed$`, "m"));
  });
});
