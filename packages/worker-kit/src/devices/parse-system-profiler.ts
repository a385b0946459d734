import type { Device } from "@rbee/contract";
import { isRecord, parseJsonObject } from "./parse-json-output.js";
import type { ParseOptions } from "./types.js";
import { parseBinarySize } from "./units.js";

/** The exact arguments detection passes to `system_profiler` on macOS. */
export const SYSTEM_PROFILER_ARGS: readonly string[] = Object.freeze(["SPDisplaysDataType", "-json"]);

/** The exact arguments detection passes to `sysctl` for the physical memory in bytes. */
export const SYSCTL_MEMSIZE_ARGS: readonly string[] = Object.freeze(["-n", "hw.memsize"]);

export interface SystemProfilerParseOptions extends ParseOptions {
  /** Free memory in bytes (see `parseVmStat`); without it an Apple GPU's whole memory counts as free. */
  memoryFreeBytes?: number;
}

/**
 * Reads the output of `system_profiler SPDisplaysDataType -json` into `metal:<N>` devices, in the
 * order listed.
 *
 * - An Apple GPU (Apple Silicon: vendor `sppci_vendor_Apple`, model "Apple M…") shares the machine's
 *   memory: `memory_total` is `memsizeBytes` (`sysctl -n hw.memsize`), `unified_memory` is true.
 * - A discrete GPU of an Intel Mac (an AMD Radeon Pro with `spdisplays_vram: "8 GB"`) has its own
 *   memory, read from that field (binary units); its use is not reported, so all of it counts as free.
 * - Intel integrated graphics (`spdisplays_vram_shared` only) are not listed: llama.cpp does not use
 *   them through Metal.
 *
 * Output that is not the expected JSON gives no devices and a warning. Never throws.
 */
export function parseSystemProfilerDisplays(
  json: string,
  memsizeBytes: number,
  options: SystemProfilerParseOptions = {},
): Device[] {
  const warn = options.onWarning ?? (() => {});
  const root = parseJsonObject(json, "system_profiler", warn);
  if (root === undefined) return [];
  const entries = root["SPDisplaysDataType"];
  if (!Array.isArray(entries)) {
    warn("system_profiler printed no SPDisplaysDataType list");
    return [];
  }
  const devices: Device[] = [];
  for (const entry of entries) {
    if (!isRecord(entry)) continue;
    const device = displayDevice(entry, devices.length, memsizeBytes, options, warn);
    if (device !== undefined) devices.push(device);
  }
  return devices;
}

function displayDevice(
  entry: Record<string, unknown>,
  index: number,
  memsizeBytes: number,
  options: SystemProfilerParseOptions,
  warn: (message: string) => void,
): Device | undefined {
  const name = text(entry["sppci_model"]) ?? text(entry["_name"]);
  if (name === undefined) return undefined;
  if (isAppleGpu(entry, name)) return appleGpu(`metal:${index}`, name, memsizeBytes, options.memoryFreeBytes, warn);
  const vramText = text(entry["spdisplays_vram"]) ?? text(entry["_spdisplays_vram"]);
  if (vramText === undefined) return undefined;
  const vram = parseBinarySize(vramText);
  if (vram === undefined) {
    warn(`system_profiler reports VRAM "${vramText}" for ${name}, which is not a size; it is skipped`);
    return undefined;
  }
  return {
    id: `metal:${index}`,
    kind: "metal",
    name,
    memory_total: vram,
    memory_used: 0,
    memory_free: vram,
    unified_memory: false,
  };
}

function appleGpu(
  id: string,
  name: string,
  memsizeBytes: number,
  memoryFreeBytes: number | undefined,
  warn: (message: string) => void,
): Device {
  const total = Number.isSafeInteger(memsizeBytes) && memsizeBytes > 0 ? memsizeBytes : 0;
  if (total === 0) warn(`the memory size of this Mac is unknown (hw.memsize); ${name} is listed with 0 bytes`);
  const free = Math.min(memoryFreeBytes ?? total, total);
  return {
    id,
    kind: "metal",
    name,
    memory_total: total,
    memory_used: total - free,
    memory_free: free,
    unified_memory: true,
  };
}

function isAppleGpu(entry: Record<string, unknown>, name: string): boolean {
  const vendor = text(entry["spdisplays_vendor"]) ?? "";
  return /apple/i.test(vendor) || /^Apple M\d/i.test(name);
}

function text(value: unknown): string | undefined {
  return typeof value === "string" && value.trim() !== "" ? value.trim() : undefined;
}
