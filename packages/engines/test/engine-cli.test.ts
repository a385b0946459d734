import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { EngineBinary } from "@rbee/engines";
import { runRbee, tempRbeeDirs } from "@rbee/testing";
import { afterAll, describe, expect, it } from "vitest";
import { MACHINE_ENGINES_DIR, machineBuild, needsBuild } from "./machine-build.js";

const dirs = tempRbeeDirs("engines");
const engines = join(dirs.root, "engines");
const env = { ...dirs.env, RBEE_ENGINES_DIR: engines, CI: "", RBEE_DEBUG: "" };
afterAll(() => rmSync(dirs.root, { recursive: true, force: true }));

const rbee = (args: string[], extra: NodeJS.ProcessEnv = {}, timeoutMs = 60_000) =>
  runRbee(args, { env: { ...env, ...extra }, timeoutMs });

/** A directory for PATH holding only the named commands (symlinks to the real ones, when they exist). */
function pathWith(name: string, links: Record<string, string>): string {
  const dir = join(dirs.root, name);
  mkdirSync(dir, { recursive: true });
  for (const [link, target] of Object.entries(links)) symlinkSync(target, join(dir, link));
  return dir;
}

async function engineList(extra: NodeJS.ProcessEnv = {}): Promise<EngineBinary[]> {
  const r = await rbee(["engine", "ls", "--json"], extra);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as EngineBinary[];
}

describe("rbee engine build", () => {
  it("fails fast without cmake, naming the package to install, before anything is cloned", async () => {
    const bin = pathWith("bin-no-cmake", existsSync("/usr/bin/git") ? { git: "/usr/bin/git" } : {});
    const r = await rbee(["engine", "build", "llama.cpp"], { PATH: bin });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/rbee: cmake and a C\+\+ compiler .* are needed to build llama\.cpp/);
    expect(r.stderr).toMatch(/sudo apt-get install cmake g\+\+/);
    expect(existsSync(join(engines, "llama.cpp"))).toBe(false);
  });

  it("refuses an engine it cannot build, and a backend it does not know", async () => {
    const r = await rbee(["engine", "build", "vllm"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown engine 'vllm'.*llama\.cpp/);
    const b = await rbee(["engine", "build", "llama.cpp", "--backend", "rocm"]);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/expected one of cpu, cuda, vulkan, metal, got 'rocm'/);
  });
});

describe("rbee engine add / ls / rm", () => {
  it("refuses a file of random bytes, with its path and the OS error", async () => {
    const junk = join(dirs.root, "junk-llama-server");
    writeFileSync(junk, randomBytes(4096), { mode: 0o755 });
    const r = await rbee(["engine", "add", "llama-server", junk]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(junk);
    expect(r.stderr).toMatch(/exec format error \(ENOEXEC\)/);
    expect(existsSync(join(engines, "engines.json"))).toBe(false);
  });

  it("refuses a missing path and a file that is not executable", async () => {
    const missing = join(dirs.root, "nowhere", "llama-server");
    const r = await rbee(["engine", "add", "llama-server", missing]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(missing);
    expect(r.stderr).toMatch(/not found \(ENOENT\)/);
    const plain = join(dirs.root, "not-executable");
    writeFileSync(plain, "#!/bin/sh\necho 'version: 1 (abc)'\n", { mode: 0o644 });
    const p = await rbee(["engine", "add", "llama-server", plain]);
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/permission denied \(EACCES\)/);
  });

  it("refuses an unknown engine id, listing the known ones", async () => {
    const r = await rbee(["engine", "add", "llama-serve", "/bin/true"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown engine 'llama-serve'.*llama-server, ggml-rpc-server, llama-bench/);
  });

  it("refuses a program that is not llama.cpp's", async () => {
    const r = await rbee(["engine", "add", "llama-bench", "/bin/true"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\/bin\/true cannot be used as llama-bench: not a llama\.cpp binary/);
  });

  it("lists nothing, saying how to get an engine, on a machine without any", async () => {
    const r = await rbee(["engine", "ls"], { PATH: pathWith("bin-empty", {}) });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/no engines found: build llama\.cpp's with `rbee engine build llama\.cpp`/);
  });
});

const build = await machineBuild();

describe("with the machine's llama.cpp build", () => {
  if (!needsBuild(build, "the engine tests on the real llama.cpp binaries")) return;
  const llamaServer = build!.bin("llama-server");
  /** "0.5.0-dev (build 1, commit de3ff81)": what the build's llama-server printed for --version */
  const version = build!.record.binaries.find((b) => b.id === "llama-server")?.version ?? "?";

  it("finds the cached build and does not rebuild it", async () => {
    const machine = { RBEE_ENGINES_DIR: MACHINE_ENGINES_DIR };
    const r = await rbee(["engine", "build", "llama.cpp", "--backend", "cpu"], machine, 30_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/already built llama\.cpp [0-9a-f]{7} \(cpu\) in .* \(cached\)/);
    expect(r.stderr).not.toMatch(/compiling|configuring/);
    expect(r.stdout.trim()).toBe(build!.dir);
    const json = await rbee(["engine", "build", "llama.cpp", "--backend", "cpu", "--json", "-q"], machine, 30_000);
    expect(json.code, json.stderr).toBe(0);
    expect(json.stderr).toBe("");
    const [only, ...rest] = JSON.parse(json.stdout) as Array<{ dir: string; cached: boolean; built_at: string }>;
    expect(rest).toEqual([]);
    expect(only).toMatchObject({ dir: build!.dir, cached: true, built_at: build!.record.built_at, backend: "cpu" });
  });

  it("adds the real llama-server, lists it with its version, and removes it", async () => {
    const r = await rbee(["engine", "add", "llama-server", llamaServer]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`added llama-server ${llamaServer} (version ${version})\n`);
    expect(version).toMatch(/[0-9a-f]{7}\)$/);
    const added = (await engineList({ PATH: pathWith("bin-none", {}) })).filter((e) => e.source === "added");
    expect(added).toEqual([
      {
        id: "llama-server",
        path: llamaServer,
        source: "added",
        version,
        status: "ok",
      },
    ]);
    const table = await rbee(["engine", "ls"], { PATH: pathWith("bin-none2", {}) });
    expect(table.stdout).toMatch(/^ID\s+VERSION\s+BACKEND\s+SOURCE\s+STATUS\s+PATH$/m);
    expect(table.stdout).toMatch(
      new RegExp(`^llama-server\\s+${version.replace(/[()]/g, "\\$&")}\\s+-\\s+added\\s+ok\\s+/`, "m"),
    );
    const rm = await rbee(["engine", "rm", "llama-server", llamaServer]);
    expect(rm.code, rm.stderr).toBe(0);
    expect(rm.stdout).toBe(`removed llama-server ${llamaServer}\n`);
    const again = await rbee(["engine", "rm", "llama-server"]);
    expect(again.code).toBe(4);
  });

  it("finds a llama-server on PATH without being asked", async () => {
    const bin = pathWith("bin-llama", { "llama-server": llamaServer, "rpc-server": build!.bin("ggml-rpc-server") });
    const list = await engineList({ PATH: bin });
    expect(list.filter((e) => e.source === "path")).toEqual([
      {
        id: "llama-server",
        path: join(bin, "llama-server"),
        source: "path",
        version,
        status: "ok",
      },
      // ggml-rpc-server prints no version: it is recognised by its usage, its version unknown without a build record
      {
        id: "ggml-rpc-server",
        path: join(bin, "rpc-server"),
        source: "path",
        version: null,
        status: "ok",
      },
    ]);
  });

  it("lists an added binary deleted later as broken, with its path", async () => {
    const copy = join(dirs.root, "mine", "llama-bench");
    mkdirSync(join(dirs.root, "mine"), { recursive: true });
    copyFileSync(build!.bin("llama-bench"), copy);
    const r = await rbee(["engine", "add", "llama-bench", copy]);
    expect(r.code, r.stderr).toBe(0);
    rmSync(copy);
    const list = await engineList({ PATH: pathWith("bin-none3", {}) });
    expect(list).toContainEqual({
      id: "llama-bench",
      path: copy,
      source: "added",
      version: null,
      status: "broken",
      error: "not found (ENOENT)",
    });
    const table = await rbee(["engine", "ls"], { PATH: pathWith("bin-none4", {}) });
    expect(table.stdout).toMatch(/llama-bench\s+-\s+-\s+added\s+broken: not found \(ENOENT\)\s+.*mine\/llama-bench/);
  });

  it("lists the machine's own build as built, with its backend", async () => {
    const list = await engineList({ RBEE_ENGINES_DIR: MACHINE_ENGINES_DIR, PATH: pathWith("bin-none5", {}) });
    const built = list.filter((e) => e.source === "built" && e.backend === "cpu");
    expect(built.map((e) => e.id).sort()).toEqual(["ggml-rpc-server", "llama-bench", "llama-server"]);
    expect(built.every((e) => e.status === "ok" && e.version === version)).toBe(true);
    expect(readdirSync(MACHINE_ENGINES_DIR)).toContain("llama.cpp");
  });
});
