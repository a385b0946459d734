import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Backend } from "./layout.js";
import { which } from "./which.js";

/** A build tool found on this machine. */
export interface Tool {
  path: string;
  /** Its `--version` first line, e.g. "cmake version 3.28.3". */
  version: string;
}

/** The tools a llama.cpp build needs: cmake, a C++ compiler, and git when the source is not cloned yet. */
export interface Toolchain {
  cmake?: Tool;
  cxx?: Tool;
  git?: Tool;
}

export type ToolName = keyof Toolchain;

/** cmake, a compiler or git is missing: the message names what to install, per platform. */
export class MissingToolError extends Error {
  constructor(
    readonly missing: readonly ToolName[],
    platform: NodeJS.Platform = process.platform,
  ) {
    super(missingToolMessage(missing, platform));
    this.name = "MissingToolError";
  }
}

const TOOL_WORDS: Record<ToolName, string> = {
  cmake: "cmake",
  cxx: "a C++ compiler (c++, g++ or clang++)",
  git: "git",
};

/** "cmake and a C++ compiler (...) are needed to build llama.cpp, and were not found on PATH: install them with ..." */
export function missingToolMessage(missing: readonly ToolName[], platform: NodeJS.Platform = process.platform): string {
  const words = missing.map((t) => TOOL_WORDS[t]);
  const what = words.length === 1 ? words[0] : `${words.slice(0, -1).join(", ")} and ${words.at(-1)}`;
  const verb = words.length === 1 ? "is" : "are";
  let how: string;
  if (platform === "darwin") {
    const steps: string[] = [];
    if (missing.includes("cxx") || missing.includes("git")) steps.push("`xcode-select --install` (compiler and git)");
    if (missing.includes("cmake")) steps.push("`brew install cmake`");
    how = steps.join(" and ");
  } else {
    const apt = missing.map((t) => (t === "cxx" ? "g++" : t)).join(" ");
    const dnf = missing.map((t) => (t === "cxx" ? "gcc-c++" : t)).join(" ");
    how = `\`sudo apt-get install ${apt}\` (Debian/Ubuntu) or \`sudo dnf install ${dnf}\` (Fedora)`;
  }
  return `${what} ${verb} needed to build llama.cpp and ${missing.length === 1 ? "was" : "were"} not found on PATH; install ${missing.length === 1 ? "it" : "them"} with ${how}`;
}

/** Runs a command briefly and answers its output; undefined when it cannot run or fails. Never throws. */
export function runQuick(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 10_000,
): Promise<{ stdout: string; stderr: string } | undefined> {
  return new Promise((resolve) => {
    try {
      execFile(
        cmd,
        [...args],
        { env, timeout: timeoutMs, killSignal: "SIGKILL", encoding: "utf8", maxBuffer: 8 * 1024 * 1024 },
        (error, stdout, stderr) => resolve(error ? undefined : { stdout, stderr }),
      );
    } catch {
      resolve(undefined);
    }
  });
}

async function toolAt(path: string | undefined, env: NodeJS.ProcessEnv): Promise<Tool | undefined> {
  if (path === undefined) return undefined;
  const out = await runQuick(path, ["--version"], env);
  if (!out) return undefined;
  const version = `${out.stdout}\n${out.stderr}`.split("\n").find((l) => l.trim() !== "") ?? "";
  return { path, version: version.trim() };
}

/** Finds cmake, a C++ compiler (CXX, else c++, g++, clang++) and git on the PATH of `env`. */
export async function findToolchain(env: NodeJS.ProcessEnv = process.env): Promise<Toolchain> {
  const cxxPath = [env.CXX, "c++", "g++", "clang++"]
    .filter((c): c is string => c !== undefined && c !== "")
    .map((c) => which(c, env))
    .find((p) => p !== undefined);
  const [cmake, cxx, git] = await Promise.all([
    toolAt(which("cmake", env), env),
    toolAt(cxxPath, env),
    toolAt(which("git", env), env),
  ]);
  const found: Toolchain = {};
  if (cmake) found.cmake = cmake;
  if (cxx) found.cxx = cxx;
  if (git) found.git = git;
  return found;
}

/** Whether one backend is built, and why (said to the user). */
export interface BackendPlan {
  backend: Backend;
  build: boolean;
  /** "nvcc 13.0 found but no NVIDIA GPU: not building CUDA (force with --backend cuda)" */
  reason: string;
}

export interface PlanOptions {
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  arch?: string;
  /**
   * Backends asked for with --backend: built even without a device (their toolkit must be there), and
   * only they (with the CPU, always built). Empty or undefined: every backend whose toolkit and device are present.
   */
  forced?: readonly Backend[];
}

/** A backend was forced but its toolkit is missing. */
export class MissingToolkitError extends Error {
  constructor(
    readonly backend: Backend,
    message: string,
  ) {
    super(message);
    this.name = "MissingToolkitError";
  }
}

function nvccPath(env: NodeJS.ProcessEnv): string | undefined {
  const onPath = which("nvcc", env);
  if (onPath) return onPath;
  for (const home of [env.CUDA_HOME, env.CUDA_PATH, "/usr/local/cuda"]) {
    if (home && existsSync(join(home, "bin", "nvcc"))) return join(home, "bin", "nvcc");
  }
  return undefined;
}

function vulkanHeaders(env: NodeJS.ProcessEnv): boolean {
  const dirs = [env.VULKAN_SDK && join(env.VULKAN_SDK, "include"), "/usr/include", "/usr/local/include"];
  return dirs.some((d) => d && existsSync(join(d, "vulkan", "vulkan.h")));
}

/** NVIDIA GPUs `nvidia-smi -L` lists ("GPU 0: NVIDIA GeForce RTX 4090 (UUID: ...)"). */
export function parseNvidiaSmiList(stdout: string): string[] {
  return stdout
    .split("\n")
    .map((l) => /^GPU \d+: (.+?)(?: \(UUID:.*)?$/.exec(l.trim())?.[1])
    .filter((n): n is string => n !== undefined);
}

/** GPUs (not CPU renderers like llvmpipe) that `vulkaninfo --summary` lists. */
export function parseVulkanGpus(stdout: string): string[] {
  const names: string[] = [];
  let type = "";
  for (const line of stdout.split("\n")) {
    const t = /deviceType\s*=\s*(\S+)/.exec(line);
    if (t) type = t[1] ?? "";
    const n = /deviceName\s*=\s*(.+)$/.exec(line);
    if (n && /GPU/.test(type)) names.push(n[1]!.trim());
    if (n) type = "";
  }
  return names;
}

/**
 * Decides which backends to build: CPU always; CUDA, Vulkan and Metal when their toolkit is
 * installed and a device for them is present (or when forced), each with the reason in words.
 */
export async function planBackends(o: PlanOptions = {}): Promise<BackendPlan[]> {
  const env = o.env ?? process.env;
  const platform = o.platform ?? process.platform;
  const arch = o.arch ?? process.arch;
  const forced = new Set(o.forced ?? []);
  const plans: BackendPlan[] = [{ backend: "cpu", build: true, reason: "CPU: always built" }];
  const force = (b: Backend) => (forced.has(b) ? " (forced with --backend)" : "");

  // CUDA
  if (platform === "darwin") {
    if (forced.has("cuda")) throw new MissingToolkitError("cuda", "CUDA cannot be built on macOS");
    plans.push({ backend: "cuda", build: false, reason: "CUDA: not on macOS" });
  } else {
    const nvcc = nvccPath(env);
    const gpus = nvcc || forced.has("cuda") ? await nvidiaGpus(env) : [];
    if (!nvcc) {
      if (forced.has("cuda"))
        throw new MissingToolkitError(
          "cuda",
          "--backend cuda needs the CUDA toolkit (nvcc), which was not found on PATH or in /usr/local/cuda: install it from https://developer.nvidia.com/cuda-downloads (or `sudo apt-get install nvidia-cuda-toolkit`)",
        );
      plans.push({
        backend: "cuda",
        build: false,
        reason: `CUDA: no toolkit (nvcc not found)${gpus.length > 0 ? ` although nvidia-smi lists ${gpus.join(", ")}` : ""}`,
      });
    } else {
      const release = /release ([\d.]+)/.exec((await runQuick(nvcc, ["--version"], env))?.stdout ?? "")?.[1];
      const found = `nvcc${release ? ` ${release}` : ""} found (${nvcc})`;
      if (gpus.length > 0 || forced.has("cuda"))
        plans.push({
          backend: "cuda",
          build: true,
          reason: `CUDA: ${found}${gpus.length > 0 ? `, GPU ${gpus.join(", ")}` : ""}${force("cuda")}`,
        });
      else
        plans.push({
          backend: "cuda",
          build: false,
          reason: `CUDA: ${found} but no NVIDIA GPU (nvidia-smi -L lists none): not building CUDA (force with --backend cuda)`,
        });
    }
  }

  // Vulkan
  {
    const glslc = which("glslc", env);
    const headers = vulkanHeaders(env);
    const missing = [!glslc && "glslc", !headers && "the Vulkan headers (vulkan/vulkan.h)"].filter(Boolean);
    if (missing.length > 0) {
      if (forced.has("vulkan"))
        throw new MissingToolkitError(
          "vulkan",
          `--backend vulkan needs ${missing.join(" and ")}, not found: install them with \`sudo apt-get install libvulkan-dev glslc\` (Debian/Ubuntu) or the Vulkan SDK (https://vulkan.lunarg.com)`,
        );
      plans.push({
        backend: "vulkan",
        build: false,
        reason: `Vulkan: no toolkit (${missing.join(" and ")} not found)`,
      });
    } else {
      const out = await runQuick("vulkaninfo", ["--summary"], env);
      const gpus = out ? parseVulkanGpus(out.stdout) : [];
      if (gpus.length > 0 || forced.has("vulkan"))
        plans.push({
          backend: "vulkan",
          build: true,
          reason: `Vulkan: glslc and headers found${gpus.length > 0 ? `, GPU ${gpus.join(", ")}` : ""}${force("vulkan")}`,
        });
      else
        plans.push({
          backend: "vulkan",
          build: false,
          reason: `Vulkan: toolkit found but no Vulkan GPU (vulkaninfo lists none): not building Vulkan (force with --backend vulkan)`,
        });
    }
  }

  // Metal
  if (platform === "darwin" && (arch === "arm64" || forced.has("metal"))) {
    plans.push({ backend: "metal", build: true, reason: `Metal: macOS on ${arch}${force("metal")}` });
  } else {
    if (forced.has("metal")) throw new MissingToolkitError("metal", "--backend metal needs macOS");
    plans.push({
      backend: "metal",
      build: false,
      reason: platform === "darwin" ? "Metal: not Apple silicon" : "Metal: not macOS",
    });
  }
  // --backend names what to build: the others are not built even when they could be
  if (forced.size > 0) {
    for (const plan of plans) {
      if (plan.build && plan.backend !== "cpu" && !forced.has(plan.backend)) {
        plan.build = false;
        plan.reason += `; not built: not asked for with --backend`;
      }
    }
  }
  return plans;
}

async function nvidiaGpus(env: NodeJS.ProcessEnv): Promise<string[]> {
  const out = await runQuick("nvidia-smi", ["-L"], env);
  return out ? parseNvidiaSmiList(out.stdout) : [];
}

/** The CMake flags of a build: what every build shares, then the backend's switches. */
export function cmakeFlags(backend: Backend, platform: NodeJS.Platform = process.platform): string[] {
  const flags = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_UI=OFF",
    // ON would download the web UI from Hugging Face while configuring: nothing is downloaded at build time
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DGGML_RPC=ON",
    "-DGGML_NATIVE=ON",
    `-DGGML_CUDA=${backend === "cuda" ? "ON" : "OFF"}`,
    `-DGGML_VULKAN=${backend === "vulkan" ? "ON" : "OFF"}`,
  ];
  if (platform === "darwin") flags.push(`-DGGML_METAL=${backend === "metal" ? "ON" : "OFF"}`);
  return flags;
}

/** The CMake targets built, and the engine each one is. */
export const BUILD_TARGETS = Object.freeze(["llama-server", "ggml-rpc-server", "llama-bench"] as const);
