import { describe, expect, it } from "vitest";
import {
  bestEngine,
  cmakeFlags,
  type EngineBinary,
  looksLikeRpcServerUsage,
  missingToolMessage,
  parseBundleHeads,
  parseLlamaVersion,
  parseNvidiaSmiList,
  parseVulkanGpus,
} from "../src/index.js";

describe("parseBundleHeads", () => {
  it("reads the commit of a v2 bundle header without git", () => {
    const header = "# v2 git bundle\nde3ff815ea7d559ee917f063901b8986f038abc6 HEAD\n\nPACK...";
    expect(parseBundleHeads(header)).toEqual([{ commit: "de3ff815ea7d559ee917f063901b8986f038abc6", ref: "HEAD" }]);
  });
  it("skips v3 capabilities and prerequisites, and refuses what is not a bundle", () => {
    const header =
      "# v3 git bundle\n@object-format=sha1\n-1111111111111111111111111111111111111111 base\n2222222222222222222222222222222222222222 refs/heads/master\n\n";
    expect(parseBundleHeads(header)).toEqual([
      { commit: "2222222222222222222222222222222222222222", ref: "refs/heads/master" },
    ]);
    expect(() => parseBundleHeads("PK\u0003\u0004")).toThrow(/not a git bundle/);
  });
});

describe("parseLlamaVersion", () => {
  it("reads llama.cpp's version line", () => {
    expect(
      parseLlamaVersion("version: 7000 (de3ff81)\nbuilt with cc (Debian 12.2.0-14) 12.2.0 for x86_64-linux-gnu"),
    ).toEqual({ version: "7000 (de3ff81)", build: 7000, commit: "de3ff81" });
    expect(parseLlamaVersion("usage: foo")).toBeUndefined();
  });
});

describe("GPU detection from recorded outputs", () => {
  it("lists the GPUs of `nvidia-smi -L`", () => {
    const out =
      "GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-0c2b8f0e-1111-2222-3333-444455556666)\nGPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-aaaa)\n";
    expect(parseNvidiaSmiList(out)).toEqual(["NVIDIA GeForce RTX 4090", "NVIDIA A100-SXM4-80GB"]);
    expect(parseNvidiaSmiList("No devices were found\n")).toEqual([]);
  });
  it("lists Vulkan GPUs but not CPU renderers", () => {
    const out = `Devices:
========
GPU0:
	apiVersion         = 1.3.255
	deviceType         = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU
	deviceName         = AMD Radeon RX 7900 XTX (RADV NAVI31)
GPU1:
	deviceType         = PHYSICAL_DEVICE_TYPE_CPU
	deviceName         = llvmpipe (LLVM 15.0.6, 256 bits)
`;
    expect(parseVulkanGpus(out)).toEqual(["AMD Radeon RX 7900 XTX (RADV NAVI31)"]);
  });
});

describe("cmakeFlags", () => {
  it("is, for the CPU on Linux, exactly the flags of the machine's cached build", () => {
    expect(cmakeFlags("cpu", "linux").join(" ")).toBe(
      "-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DGGML_RPC=ON -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_VULKAN=OFF",
    );
    expect(cmakeFlags("cuda", "linux")).toContain("-DGGML_CUDA=ON");
    expect(cmakeFlags("metal", "darwin")).toContain("-DGGML_METAL=ON");
    expect(cmakeFlags("cpu", "darwin")).toContain("-DGGML_METAL=OFF");
  });
});

describe("missingToolMessage", () => {
  it("names the packages to install, per platform", () => {
    expect(missingToolMessage(["cmake"], "linux")).toMatch(/cmake is needed .*sudo apt-get install cmake`/);
    expect(missingToolMessage(["cmake", "cxx"], "linux")).toMatch(
      /apt-get install cmake g\+\+`.*dnf install cmake gcc-c\+\+/,
    );
    const mac = missingToolMessage(["cmake", "cxx"], "darwin");
    expect(mac).toMatch(/brew install cmake/);
    expect(mac).toMatch(/xcode-select --install/);
  });
});

describe("bestEngine", () => {
  const e = (o: Partial<EngineBinary>): EngineBinary => ({
    id: "llama-server",
    path: "/x",
    version: "1 (abc)",
    source: "built",
    status: "ok",
    ...o,
  });
  const list = [
    e({ path: "/path/llama-server", source: "path" }),
    e({ path: "/built/cpu", backend: "cpu" }),
    e({ path: "/built/cuda", backend: "cuda" }),
    e({ path: "/added/broken", source: "added", status: "broken", version: null }),
    e({ id: "llama-bench", path: "/built/bench", backend: "cpu" }),
  ];
  it("picks a working binary built for the backend, else one of unknown backend", () => {
    expect(bestEngine(list, "llama-server", "cuda")?.path).toBe("/built/cuda");
    expect(bestEngine(list, "llama-server", "vulkan")?.path).toBe("/path/llama-server");
    expect(bestEngine(list, "ggml-rpc-server")).toBeUndefined();
  });
  it("prefers what the user added over rbee's build over PATH", () => {
    const added = e({ path: "/added/ok", source: "added" });
    expect(bestEngine([...list, added], "llama-server")?.path).toBe("/added/ok");
    expect(bestEngine([...list, added], "llama-server", "cpu")?.path).toBe("/built/cpu");
  });
});

describe("llama.cpp's version lines", () => {
  it("reads a build from node-llama-cpp's bundle and a release build", () => {
    // llama-server --version of de3ff81 built from the bundle (stderr)
    const bundle =
      "0.00.000.360 I srv  llama_server: initializing ...\nversion: 0.5.0-dev (build 1, commit de3ff81)\nbuilt with GNU 12.2.0 for Linux x86_64\n";
    expect(parseLlamaVersion(bundle)).toEqual({
      version: "0.5.0-dev (build 1, commit de3ff81)",
      build: 1,
      commit: "de3ff81",
    });
  });
  it("recognises ggml-rpc-server, which has no --version, by its usage", () => {
    const usage =
      "error: unknown argument: --version\nUsage: ./ggml-rpc-server [options]\n\noptions:\n  -H, --host HOST   host to bind to (default: 127.0.0.1)\n  -p, --port PORT   port to bind to (default: 50052)\n";
    expect(parseLlamaVersion(usage)).toBeUndefined();
    expect(looksLikeRpcServerUsage(usage)).toBe(true);
    expect(looksLikeRpcServerUsage("usage: true")).toBe(false);
  });
});
