import type { Device } from "@rbee/contract";
import type { ParseOptions } from "./types.js";

/** The exact arguments detection passes to `vulkaninfo`. */
export const VULKANINFO_ARGS: readonly string[] = Object.freeze(["--summary"]);

/** Device types llama.cpp does not run on: software renderers (llvmpipe, lavapipe, SwiftShader) and "other". */
const SKIPPED_TYPES = /PHYSICAL_DEVICE_TYPE_(CPU|OTHER)/i;

/**
 * Reads the output of `vulkaninfo --summary` into `vulkan:<N>` devices, numbered in the order listed
 * after leaving out software renderers (llvmpipe) and a second listing of the same GPU (same
 * `deviceUUID`, as when two drivers expose one card), which is how llama.cpp numbers its Vulkan
 * devices. The summary reports no memory, so `memory_total` etc. are 0: detection prefers
 * node-llama-cpp, which knows the VRAM, and uses this only to list what is there.
 * Output without a "GPU0:" block gives no devices and a warning. Never throws.
 */
export function parseVulkanInfoSummary(text: string, options: ParseOptions = {}): Device[] {
  const warn = options.onWarning ?? (() => {});
  const blocks = deviceBlocks(text);
  if (blocks.length === 0) {
    warn(`vulkaninfo listed no devices: ${JSON.stringify(text.trim().slice(0, 200))}`);
    return [];
  }
  const devices: Device[] = [];
  const seen = new Set<string>();
  for (const props of blocks) {
    const name = props.get("deviceName");
    if (name === undefined || name === "") continue;
    if (SKIPPED_TYPES.test(props.get("deviceType") ?? "")) continue;
    const uuid = props.get("deviceUUID");
    if (uuid !== undefined) {
      if (seen.has(uuid)) continue;
      seen.add(uuid);
    }
    const device: Device = {
      id: `vulkan:${devices.length}`,
      kind: "vulkan",
      name,
      memory_total: 0,
      memory_used: 0,
      memory_free: 0,
    };
    const driver = props.get("driverVersion");
    if (driver !== undefined && driver !== "") device.driver_version = driver;
    devices.push(device);
  }
  return devices;
}

/** The `key = value` lines under each "GPUn:" header of the "Devices:" section. */
function deviceBlocks(text: string): Map<string, string>[] {
  const blocks: Map<string, string>[] = [];
  let current: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (/^GPU\d+:$/.test(line)) {
      current = new Map();
      blocks.push(current);
      continue;
    }
    if (current === undefined) continue;
    const match = /^(\w+)\s*=\s*(.*)$/.exec(line);
    if (match) current.set(match[1]!, match[2]!.trim());
    else if (line !== "") current = undefined;
  }
  return blocks;
}
