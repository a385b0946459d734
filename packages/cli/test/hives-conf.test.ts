import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HivesConf, HivesConfError, resolveHive, splitConfigLine } from "../src/hives-conf.js";
import { llamaBuildFits } from "../src/rbee-bundle.js";
import { nodeIsRecentEnough, queenUrlForHive, versionVerdict } from "../src/remote-hive.js";
import { formatBytes } from "../src/render/format.js";
import { shellQuote, sshConfigAliases, sshFailure } from "../src/ssh.js";

const FILE = "/home/me/.config/rbee/hives.conf";
const parse = (text: string) => HivesConf.parse(FILE, text);

/** The error a malformed file gives, as its message. */
function errorOf(text: string): string {
  try {
    parse(text).entries();
  } catch (err) {
    expect(err).toBeInstanceOf(HivesConfError);
    return (err as Error).message;
  }
  throw new Error(`expected an error for:\n${text}`);
}

describe("hives.conf: reading", () => {
  it("reads entries in the SSH-config style, keywords in any case, with = or spaces", () => {
    const conf = parse(
      [
        "# my machines",
        "Host gpu-box",
        "    HostName 192.168.1.20",
        "    user me",
        "    PORT=2222",
        "    HivePort = 7900",
        "    IdentityFile ~/.ssh/id_gpu",
        "",
        "Host mac",
        '  HostName "mac.local"  # the laptop',
        "  QueenUrl http://192.168.1.10:7833/",
        "  SetEnv RBEE_DEVICES=cpu",
        "  SetEnv RBEE_HEARTBEAT_INTERVAL_MS=1000",
      ].join("\n"),
    );
    const [gpu, mac] = conf.entries();
    expect(gpu).toEqual({
      alias: "gpu-box",
      hostName: "192.168.1.20",
      user: "me",
      port: 2222,
      hivePort: 7900,
      identityFile: "~/.ssh/id_gpu",
      setEnv: {},
      line: 2,
    });
    expect(mac).toMatchObject({
      alias: "mac",
      hostName: "mac.local",
      queenUrl: "http://192.168.1.10:7833",
      setEnv: { RBEE_DEVICES: "cpu", RBEE_HEARTBEAT_INTERVAL_MS: "1000" },
      line: 9,
    });
  });

  it("fills in the defaults: hive port 7835, id from the alias, advertised at HostName, listening on all addresses", () => {
    const h = resolveHive(parse("Host GPU-Box\n HostName 192.168.1.20\n").require("GPU-Box"));
    expect(h).toMatchObject({
      hostName: "192.168.1.20",
      hivePort: 7835,
      hiveId: "gpu-box",
      advertiseUrl: "http://192.168.1.20:7835",
      hiveListen: "0.0.0.0",
      user: undefined,
      sshPort: undefined,
    });
    const loop = resolveHive(parse("Host here\n HostName 127.0.0.1\n HivePort 9000\n").require("here"));
    expect(loop).toMatchObject({ advertiseUrl: "http://127.0.0.1:9000", hiveListen: "127.0.0.1" });
    const v6 = resolveHive(parse("Host six\n HostName fd00::5\n").require("six"));
    expect(v6.advertiseUrl).toBe("http://[fd00::5]:7835");
    expect(resolveHive(parse("Host bare\n").require("bare")).hostName).toBe("bare");
  });

  it("takes defaults from a Host * entry, wherever it is; an entry's own values win", () => {
    const conf = parse(
      "Host a\n User alice\nHost b\n HostName b.lan\nHost *\n User me\n QueenUrl http://10.0.0.1:7833\n",
    );
    expect(conf.entries().map((e) => e.alias)).toEqual(["a", "b"]);
    expect(conf.get("a")).toMatchObject({ user: "alice", queenUrl: "http://10.0.0.1:7833" });
    expect(conf.get("b")).toMatchObject({ user: "me", hostName: "b.lan" });
  });

  it("an empty or missing file has no entries; asking for one says how to add it (exit 4)", () => {
    expect(parse("").entries()).toEqual([]);
    expect(HivesConf.read(join(tmpdir(), "no-such-dir-rbee", "hives.conf")).entries()).toEqual([]);
    expect(() => parse("Host a\n").require("b")).toThrow(
      /no hive 'b' in .*hives\.conf \(it has a\); add it with `rbee hive add b --host <address>`/,
    );
    try {
      parse("").require("b");
    } catch (err) {
      expect((err as { exitCode: number }).exitCode).toBe(4);
    }
  });

  it.each([
    ["HostName 1.2.3.4\n", 1, "HostName comes before any 'Host <alias>' line"],
    ["Host a\n  Hostname\n", 2, "HostName has no value; write it like 'HostName 192.168.1.20'"],
    ["Host a\n  Port 70000\n", 2, "Port: expected a port from 1 to 65535, got '70000'"],
    ["Host a\n  HivePort seven\n", 2, "HivePort: expected a port from 1 to 65535, got 'seven'"],
    ["Host a\n\n  Colour blue\n", 3, "unknown keyword 'Colour'; hives.conf knows Host, HostName, User"],
    ["Host a b\n", 1, "Host names one machine in hives.conf, got 2 (a b)"],
    ["Host\n", 1, "Host has no alias"],
    ["Host gpu*\n", 1, "'gpu*' is not a usable alias"],
    ["Host a\nHost a\n", 2, "Host a is already defined on line 1"],
    ["Host a\n User x\n User y\n", 3, "User is given twice for Host a"],
    ['Host a\n HostName "1.2.3.4\n', 2, 'opens a quote (") that is never closed'],
    ["Host a\n HostName 1.2.3.4 5.6.7.8\n", 2, "HostName takes one value, got 2"],
    ["Host a\n QueenUrl ftp://x\n", 2, "QueenUrl: expected an http:// or https:// URL"],
    ["Host a\n HiveId Big_Box\n", 2, "HiveId: 'Big_Box' must be 1-128 characters"],
    ["Host a\n SetEnv NOEQUALS\n", 2, "SetEnv takes NAME=value"],
    ["Match host x\n", 1, "Match is not supported in hives.conf"],
    ["Host a\n  = 5\n", 2, "cannot read '= 5'"],
  ])("refuses %j naming the file and line %i", (text, line, detail) => {
    const message = errorOf(text);
    expect(message.startsWith(`${FILE}:${line}: `)).toBe(true);
    expect(message).toContain(detail);
  });

  it("splits lines like ssh: comments, quotes, '=' with or without spaces", () => {
    expect(splitConfigLine("   # comment")).toBeUndefined();
    expect(splitConfigLine("")).toBeUndefined();
    expect(splitConfigLine('IdentityFile "/path/with space/key" # mine')).toEqual({
      keyword: "IdentityFile",
      args: ["/path/with space/key"],
    });
    expect(splitConfigLine("Port=22")).toEqual({ keyword: "Port", args: ["22"] });
    expect(splitConfigLine("\tHost  a  b")).toEqual({ keyword: "Host", args: ["a", "b"] });
  });
});

describe("hives.conf: writing keeps what the user wrote", () => {
  const original = [
    "# rbee machines — edited by hand",
    "",
    "# the gaming PC",
    "Host gpu-box",
    "    HostName 192.168.1.20   # static lease",
    "    # the hive runs as me",
    "    User me",
    "",
    "# the laptop",
    "Host mac",
    "    HostName mac.local",
    "",
    "Host *",
    "    QueenUrl http://192.168.1.10:7833",
  ].join("\n");

  it("add appends an entry after a blank line and changes no other line", () => {
    const conf = parse(`${original}\n`);
    conf.add({ alias: "nuc", hostName: "10.0.0.7", user: "pi", port: 2222, hivePort: 7900, setEnv: { A: "1 2" } });
    expect(conf.text).toBe(
      `${original}\n\nHost nuc\n    HostName 10.0.0.7\n    User pi\n    Port 2222\n    HivePort 7900\n    SetEnv "A=1 2"\n`,
    );
    expect(parse(conf.text).get("nuc")).toMatchObject({ hostName: "10.0.0.7", port: 2222, setEnv: { A: "1 2" } });
  });

  it("add refuses an alias that is there, and values it could not read back", () => {
    const conf = parse(original);
    expect(() => conf.add({ alias: "mac", hostName: "x" })).toThrow(/'mac' is already in .* \(line 10\)/);
    expect(() => conf.add({ alias: "bad alias", hostName: "x" })).toThrow(/not a usable hive alias/);
    expect(() => conf.add({ alias: "n", hostName: "x", hiveId: "Not Safe" })).toThrow(/must be 1-128 characters/);
    expect(conf.text).toBe(`${original}\n`);
  });

  it("rm removes the entry's lines, its inner comments with it, and keeps the comments around it", () => {
    const conf = parse(`${original}\n`);
    expect(conf.remove("gpu-box")).toBe(true);
    expect(conf.text).toBe(
      [
        "# rbee machines — edited by hand",
        "",
        "# the gaming PC",
        "",
        "# the laptop",
        "Host mac",
        "    HostName mac.local",
        "",
        "Host *",
        "    QueenUrl http://192.168.1.10:7833",
        "",
      ].join("\n"),
    );
    expect(conf.remove("gpu-box")).toBe(false);
  });

  it("rm of the last entry leaves no trailing blank lines; of the only entry, an empty file", () => {
    const conf = parse("Host a\n  HostName x\n\nHost b\n  HostName y\n");
    conf.remove("b");
    expect(conf.text).toBe("Host a\n  HostName x\n");
    conf.remove("a");
    expect(conf.text).toBe("");
  });

  it("keeps CRLF line endings", () => {
    const conf = parse("# win\r\nHost a\r\n  HostName x\r\n");
    conf.add({ alias: "b", hostName: "y" });
    expect(conf.text).toBe("# win\r\nHost a\r\n  HostName x\r\n\r\nHost b\r\n    HostName y\r\n");
  });

  describe("on disk", () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), "rbee-hivesconf-"));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it("save writes atomically and keeps the file's mode", () => {
      const file = join(dir, "hives.conf");
      writeFileSync(file, original, { mode: 0o600 });
      const conf = HivesConf.read(file);
      conf.add({ alias: "nuc", hostName: "10.0.0.7" });
      conf.save();
      expect(readFileSync(file, "utf8")).toBe(`${original}\n\nHost nuc\n    HostName 10.0.0.7\n`);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      const fresh = join(dir, "sub", "hives.conf");
      const created = HivesConf.read(fresh);
      created.add({ alias: "a", hostName: "x" });
      created.save();
      expect(readFileSync(fresh, "utf8")).toBe("Host a\n    HostName x\n");
    });

    it("reads the Host names of an ssh config, through Include, skipping patterns", () => {
      writeFileSync(join(dir, "config"), "Include conf.d/*.conf\nHost gpu-box nuc\n  HostName x\nHost *.lan !bad\n");
      const sub = join(dir, "conf.d");
      mkdirSync(sub);
      writeFileSync(join(sub, "a.conf"), "Host mac\n");
      writeFileSync(join(sub, "ignored.txt"), "Host no\n");
      expect(sshConfigAliases(join(dir, "config"))).toEqual(["mac", "gpu-box", "nuc"]);
      expect(sshConfigAliases(join(dir, "missing"))).toEqual([]);
    });
  });
});

describe("remote hive rules", () => {
  const hive = (text: string) => resolveHive(parse(text).require("h"));

  it("the queen URL a remote hive gets: flag > QueenUrl > the CLI's; loopback refused for another machine", () => {
    const remote = hive("Host h\n HostName 192.168.1.20\n");
    expect(() => queenUrlForHive(remote, { queenUrl: "http://127.0.0.1:7833" })).toThrow(
      /the queen URL http:\/\/127\.0\.0\.1:7833 is a loopback address, which on h \(192\.168\.1\.20\) is h itself: write 'QueenUrl http:\/\/.+:7833' under Host h/,
    );
    expect(queenUrlForHive(remote, { queenUrl: "http://192.168.1.10:7833" })).toBe("http://192.168.1.10:7833");
    expect(queenUrlForHive(remote, { queenUrl: "http://x:1" }, "http://10.0.0.1:7833")).toBe("http://10.0.0.1:7833");
    const withConf = hive("Host h\n HostName 192.168.1.20\n QueenUrl http://192.168.1.10:7833\n");
    expect(queenUrlForHive(withConf, { queenUrl: "http://127.0.0.1:7833" })).toBe("http://192.168.1.10:7833");
    const loop = hive("Host h\n HostName 127.0.0.1\n");
    expect(queenUrlForHive(loop, { queenUrl: "http://127.0.0.1:7833" })).toBe("http://127.0.0.1:7833");
  });

  it("node must be 20.10 or newer", () => {
    expect(nodeIsRecentEnough("20.10.0")).toBe(true);
    expect(nodeIsRecentEnough("22.1.0")).toBe(true);
    expect(nodeIsRecentEnough("20.9.1")).toBe(false);
    expect(nodeIsRecentEnough("18.19.0")).toBe(false);
  });

  it("a version that differs is reported with the fix", () => {
    expect(versionVerdict(undefined, "h")).toEqual({
      ok: false,
      text: "not installed; install it with `rbee hive install h`",
    });
    expect(versionVerdict("0.0.1", "h").text).toMatch(
      /^0\.0\.1, but this rbee is \S+; update it with `rbee hive install h`$/,
    );
  });

  it("copies only the llama.cpp builds for the machine's platform and GPUs", () => {
    const linux = { platform: "linux" as const, arch: "x64", gpus: new Set<string>() };
    expect(llamaBuildFits("@node-llama-cpp/linux-x64", linux)).toBe(true);
    expect(llamaBuildFits("@node-llama-cpp/linux-x64-cuda", linux)).toBe(false);
    expect(llamaBuildFits("@node-llama-cpp/linux-x64-cuda-ext", { ...linux, gpus: new Set(["cuda"]) })).toBe(true);
    expect(llamaBuildFits("@node-llama-cpp/linux-x64-vulkan", { ...linux, gpus: new Set(["vulkan"]) })).toBe(true);
    expect(llamaBuildFits("@node-llama-cpp/linux-arm64", linux)).toBe(false);
    expect(llamaBuildFits("@node-llama-cpp/mac-arm64-metal", { ...linux, platform: "darwin", arch: "arm64" })).toBe(
      true,
    );
    expect(llamaBuildFits("@node-llama-cpp/win-x64", linux)).toBe(false);
  });

  it("ssh refusals become errors that say what to do", () => {
    const t = { alias: "gpu", hostName: "10.0.0.5", user: "me", sshPort: 2222, identityFile: undefined, line: 4 };
    expect(sshFailure(t, "me@10.0.0.5: Permission denied (publickey).\n").message).toBe(
      "cannot log in to gpu (me@10.0.0.5:2222): no key was accepted (me@10.0.0.5: Permission denied (publickey).). rbee logs in without a password: install your key there (`ssh-copy-id -p 2222 me@10.0.0.5`), or set IdentityFile (and User) under Host gpu in hives.conf (line 4)",
    );
    expect(sshFailure(t, "Host key verification failed.\n").message).toMatch(
      /ssh does not know its host key .*Connect once by hand to check and accept it \(`ssh -p 2222 me@10\.0\.0\.5`\)/,
    );
    expect(sshFailure(t, "ssh: connect to host 10.0.0.5 port 2222: Connection refused\n").message).toMatch(
      /^cannot reach gpu \(me@10\.0\.0\.5:2222\) over ssh: .*Connection refused\. Is the machine on and its ssh server running/,
    );
    expect(sshFailure(t, "ssh: Could not resolve hostname nope: Name or service not known\n").message).toMatch(
      /the host name does not resolve .*set HostName to its address under Host gpu/,
    );
    expect(sshFailure(t, "").exitCode).toBe(3);
  });

  it("reports sizes of 100 MiB and more with all their digits", () => {
    expect(formatBytes(650 * 2 ** 20)).toBe("650 MiB");
    expect(formatBytes(100 * 2 ** 20)).toBe("100 MiB");
    expect(formatBytes(41.7 * 2 ** 20)).toBe("41.7 MiB");
    expect(formatBytes(2 * 2 ** 20)).toBe("2 MiB");
  });

  it("quotes shell words", () => {
    expect(shellQuote("http://10.0.0.1:7833")).toBe("http://10.0.0.1:7833");
    expect(shellQuote("it's $HOME")).toBe(`'it'\\''s $HOME'`);
    expect(shellQuote("")).toBe("''");
  });
});
