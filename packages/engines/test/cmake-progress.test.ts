import { describe, expect, it } from "vitest";
import { parseCmakeProgress } from "../src/index.js";

// real lines of `cmake --build build --target llama-server ggml-rpc-server llama-bench -j 2` on llama.cpp de3ff81
const REAL_LINES = `[  1%] Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o
[  3%] Linking CXX static library libvendor-hash.a
[  3%] Built target vendor-hash
[  9%] Provisioning UI assets
CMake Warning at /root/.cache/rbee/engines/llama.cpp/.build-de3ff81-cpu/src/scripts/ui-assets.cmake:584 (message):
-- UI: embedded 0 assets
[ 36%] Building CXX object src/CMakeFiles/llama.dir/llama-kv-cache-dsv4.cpp.o
/usr/lib/gcc/x86_64-linux-gnu/12/include/avx512fintrin.h:5946:10: warning: ‘__Y’ is used uninitialized [-Wuninitialized]
[ 42%] Linking CXX static library libllama.a
[ 58%] Building CXX object tools/mtmd/CMakeFiles/mtmd.dir/models/glm4v.cpp.o
[ 92%] Building CXX object common/CMakeFiles/llama-common.dir/jinja/caps.cpp.o`.split("\n");

describe("parseCmakeProgress", () => {
  it("reads the percentage, the action and the target of real llama.cpp build lines", () => {
    const parsed = REAL_LINES.map(parseCmakeProgress);
    expect(parsed[0]).toEqual({
      percent: 1,
      message: "Building C object ggml/src/CMakeFiles/ggml-base.dir/ggml.c.o",
      action: "compile",
      target: "ggml-base",
    });
    expect(parsed[1]).toMatchObject({ percent: 3, action: "link", target: "vendor-hash" });
    expect(parsed[2]).toMatchObject({ percent: 3, action: "built", target: "vendor-hash" });
    expect(parsed[3]).toEqual({ percent: 9, message: "Provisioning UI assets", action: "other" });
    expect(parsed[6]).toMatchObject({ percent: 36, action: "compile", target: "llama" });
    expect(parsed[8]).toMatchObject({ percent: 42, action: "link", target: "llama" });
    expect(parsed[9]).toMatchObject({ percent: 58, action: "compile", target: "mtmd" });
    expect(parsed[10]).toMatchObject({ percent: 92, action: "compile", target: "llama-common" });
  });

  it("ignores lines without a progress figure: warnings, configure output, compiler notes", () => {
    expect(parseCmakeProgress(REAL_LINES[4]!)).toBeUndefined();
    expect(parseCmakeProgress(REAL_LINES[5]!)).toBeUndefined();
    expect(parseCmakeProgress(REAL_LINES[7]!)).toBeUndefined();
    expect(parseCmakeProgress("")).toBeUndefined();
    expect(parseCmakeProgress("[999%] nonsense")).toBeUndefined();
  });

  it("reads executables and Ninja's [n/total] form", () => {
    expect(parseCmakeProgress("[100%] Linking CXX executable ../../bin/llama-server")).toMatchObject({
      percent: 100,
      action: "link",
      target: "llama-server",
    });
    expect(parseCmakeProgress("[100%] Built target llama-server")).toMatchObject({
      action: "built",
      target: "llama-server",
    });
    expect(parseCmakeProgress("[12/240] Building CXX object src/CMakeFiles/llama.dir/llama-vocab.cpp.o")).toMatchObject(
      { percent: 5, action: "compile", target: "llama" },
    );
  });
});
