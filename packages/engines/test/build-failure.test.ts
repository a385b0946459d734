import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireOrSkip, runRbee, tempRbeeDirs } from "@rbee/testing";
import { afterAll, describe, expect, it } from "vitest";
import { buildId, llamaCppPaths, llamaCppSource, which } from "../src/index.js";

const dirs = tempRbeeDirs("engine-failure");
const engines = join(dirs.root, "engines");
afterAll(() => rmSync(dirs.root, { recursive: true, force: true }));

/**
 * A stand-in for cmake, named as such: it configures without complaint and fails the build after 40
 * lines of output, as a compile error would. The source tree is faked too, so nothing is cloned.
 */
function fakeCmake(bin: string): void {
  writeFileSync(
    join(bin, "cmake"),
    `#!/bin/sh
case "$1" in
  --version) echo "cmake version 3.99.0 (fake)";;
  --build) i=1; while [ $i -le 40 ]; do echo "[ $i%] Building CXX object src/CMakeFiles/llama.dir/file$i.cpp.o"; i=$((i+1)); done
           echo "src/llama.cpp:1:1: error: this build was made to fail" >&2; exit 2;;
  *) echo "-- Configuring done";;
esac
`,
    { mode: 0o755 },
  );
}

const cxx = which("c++") ?? which("g++") ?? which("clang++");
const ready =
  process.platform !== "win32" &&
  requireOrSkip(
    cxx !== undefined,
    "the failing engine build test",
    "it needs a C++ compiler: install g++ (apt-get install -y g++)",
  );

describe.skipIf(!ready)("a failing `rbee engine build`", () => {
  it("prints the failed step, its last 30 lines and the log's path, and exits 1", async () => {
    const source = await llamaCppSource();
    const p = llamaCppPaths(engines, buildId(source.commit, "cpu"));
    mkdirSync(p.src, { recursive: true });
    writeFileSync(join(p.src, "CMakeLists.txt"), "# a fake source tree: the build never reads it\n");
    const bin = join(dirs.root, "bin");
    mkdirSync(bin);
    fakeCmake(bin);
    symlinkSync(cxx!, join(bin, "c++"));
    const r = await runRbee(["engine", "build", "llama.cpp", "--backend", "cpu"], {
      env: { ...dirs.env, RBEE_ENGINES_DIR: engines, PATH: `${bin}:/usr/bin:/bin`, CI: "true" },
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/rbee: cmake --build failed \(exit code 2\); the last lines of its output:/);
    const tail = r.stderr.slice(r.stderr.indexOf("the last lines of its output:"));
    expect(tail).toContain("[ 12%] Building CXX object");
    expect(tail).not.toContain("[ 11%] Building CXX object"); // 30 lines: the 41 printed, less the first 11
    expect(tail).toContain("error: this build was made to fail");
    expect(r.stderr).toContain(`full log: ${p.log}`);
    expect(readFileSync(p.log, "utf8")).toContain("[ 1%] Building CXX object src/CMakeFiles/llama.dir/file1.cpp.o");
    expect(existsSync(p.install)).toBe(false);
    expect(existsSync(p.lock)).toBe(false);
  });
});
