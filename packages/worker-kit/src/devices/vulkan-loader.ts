import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** Directories the Vulkan loader is installed in by Linux distributions (and by the Vulkan SDK). */
const LINUX_LIB_DIRS = [
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/usr/lib64",
  "/usr/lib",
  "/lib64",
  "/lib",
  "/usr/local/lib",
];
const LINUX_LOADER = "libvulkan.so.1";

/**
 * Whether the Vulkan loader (`libvulkan.so.1`, `vulkan-1.dll`) is on this machine. Without it no
 * Vulkan program runs, so the probes (a child process that loads llama.cpp's Vulkan build, about a
 * second of a hive's start, or `vulkaninfo`) can only fail. Looked up where the dynamic linker
 * looks: its cache, LD_LIBRARY_PATH and the usual directories; on Windows, System32. Elsewhere
 * (macOS has no Vulkan loader by default, but MoltenVK may be anywhere) it answers true.
 */
export function vulkanLoaderPresent(
  platform: NodeJS.Platform = process.platform,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (platform === "win32") {
    return existsSync(join(env.SystemRoot ?? env.windir ?? "C:\\Windows", "System32", "vulkan-1.dll"));
  }
  if (platform !== "linux") return true;
  const dirs = [...(env.LD_LIBRARY_PATH ?? "").split(":").filter((d) => d !== ""), ...LINUX_LIB_DIRS];
  if (dirs.some((dir) => existsSync(join(dir, LINUX_LOADER)))) return true;
  try {
    return readFileSync("/etc/ld.so.cache").includes(LINUX_LOADER);
  } catch {
    return false;
  }
}
