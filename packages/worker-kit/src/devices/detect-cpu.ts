import { readFileSync } from "node:fs";
import os from "node:os";
import type { Device } from "@rbee/contract";

/**
 * The machine's CPU as a device: its model name, its logical cores and the memory a model can use.
 *
 * `memory_total` is the physical memory, or the container's memory limit when that is lower (a hive
 * in a container must not plan with the host's memory). `memory_free` is what the kernel reports as
 * available (Linux: `MemAvailable` in /proc/meminfo, which counts reclaimable cache; elsewhere
 * `os.freemem()`), never more than the total.
 */
export function detectCpu(): Device {
  const total = memoryTotal();
  const free = Math.min(memoryAvailable() ?? os.freemem(), total);
  return {
    id: "cpu",
    kind: "cpu",
    name: cpuModelName(),
    cores: Math.max(1, os.availableParallelism()),
    memory_total: total,
    memory_used: total - free,
    memory_free: free,
  };
}

/** `MemAvailable` from the text of /proc/meminfo, in bytes; undefined when absent. */
export function parseMeminfo(text: string): number | undefined {
  const match = /^MemAvailable:\s+(\d+)\s*kB\s*$/m.exec(text);
  return match ? Number(match[1]) * 1024 : undefined;
}

function cpuModelName(): string {
  const model = os.cpus()[0]?.model.trim().replace(/\s+/g, " ");
  return model === undefined || model === "" || model.toLowerCase() === "unknown" ? "CPU" : model;
}

function memoryTotal(): number {
  const physical = os.totalmem();
  // Unlimited cgroups report a huge number (2^64 or 2^63 rounded to the page), so only a lower limit counts.
  const limit = process.constrainedMemory?.() ?? 0;
  return limit > 0 && limit < physical ? Math.floor(limit) : physical;
}

function memoryAvailable(): number | undefined {
  if (process.platform !== "linux") return undefined;
  try {
    return parseMeminfo(readFileSync("/proc/meminfo", "utf8"));
  } catch {
    return undefined;
  }
}
