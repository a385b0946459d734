import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import type { Device } from "@rbee/contract";
import { isRecord } from "./parse-json-output.js";
import { runCommand } from "./run-command.js";
import type { CommandRunner, WarningSink } from "./types.js";
import { parseWholeNumber } from "./units.js";

/** How long the node-llama-cpp probe may take before it is killed. */
export const NODE_LLAMA_CPP_PROBE_TIMEOUT_MS = 10_000;

/** The line the probe prints its answer on, so that anything else llama.cpp prints is ignored. */
export const NODE_LLAMA_CPP_PROBE_PREFIX = "RBEE_VULKAN_PROBE ";

/**
 * The probe, run as `node --input-type=module -e <script> <module-url>` in a child process: loading
 * llama.cpp's Vulkan backend initialises the GPU driver, which can hang or crash, and neither must
 * happen to the hive. The module is a variable, so nothing here depends on node-llama-cpp being installed.
 */
const PROBE_SCRIPT = `
const prefix = ${JSON.stringify(NODE_LLAMA_CPP_PROBE_PREFIX)};
try {
  const { getLlama } = await import(process.argv[1]);
  const llama = await getLlama({ gpu: "vulkan", build: "never", skipDownload: true, logLevel: "error", progressLogs: false });
  try {
    const names = llama.gpu === "vulkan" ? await llama.getGpuDeviceNames() : [];
    const vram = llama.gpu === "vulkan" ? await llama.getVramState() : null;
    console.log(prefix + JSON.stringify({ names, vram }));
  } finally {
    await llama.dispose();
  }
} catch (err) {
  console.log(prefix + JSON.stringify({ error: String(err && err.message ? err.message : err).split("\\n")[0] }));
}
process.exit(0);
`;

export interface NodeLlamaCppProbeOptions {
  /** Runs the probe's child process; the default is {@link runCommand}. */
  run?: CommandRunner;
  timeoutMs?: number;
  onWarning?: WarningSink;
  /** Where node-llama-cpp is; by default it is resolved from this package. */
  moduleUrl?: string;
}

/**
 * Lists the Vulkan GPUs llama.cpp can use, with their VRAM, by asking node-llama-cpp's prebuilt
 * Vulkan binary (`getLlama({gpu: "vulkan", build: "never"})`, then `getGpuDeviceNames()` and
 * `getVramState()`) in a child process killed after `timeoutMs`. Answers `[]` when node-llama-cpp is
 * not installed, has no Vulkan binary for this machine, finds no Vulkan GPU, or fails in any way;
 * never throws and never hangs.
 */
export async function detectVulkanWithNodeLlamaCpp(options: NodeLlamaCppProbeOptions = {}): Promise<Device[]> {
  const moduleUrl = options.moduleUrl ?? resolveNodeLlamaCpp();
  if (moduleUrl === undefined) return [];
  const timeoutMs = options.timeoutMs ?? NODE_LLAMA_CPP_PROBE_TIMEOUT_MS;
  const run = options.run ?? ((cmd, args, ms) => runCommand(cmd, args, ms, options.onWarning));
  try {
    const result = await run(process.execPath, ["--input-type=module", "-e", PROBE_SCRIPT, moduleUrl], timeoutMs);
    return result === null ? [] : parseNodeLlamaCppProbe(result.stdout, options.onWarning);
  } catch (err) {
    options.onWarning?.(`the node-llama-cpp Vulkan probe failed (${err instanceof Error ? err.message : String(err)})`);
    return [];
  }
}

/**
 * Reads the probe's answer line (`RBEE_VULKAN_PROBE {"names": [...], "vram": {total, used, free, unifiedSize}}`)
 * into `vulkan:<N>` devices. node-llama-cpp reports the VRAM of all its Vulkan devices together: one
 * device gets all of it; identical devices share it equally; different devices cannot be told apart,
 * so they are listed with 0 bytes and a warning. An error answer or no answer gives `[]`.
 */
export function parseNodeLlamaCppProbe(stdout: string, onWarning?: WarningSink): Device[] {
  const line = stdout.split(/\r?\n/).find((l) => l.startsWith(NODE_LLAMA_CPP_PROBE_PREFIX));
  if (line === undefined) return [];
  let answer: unknown;
  try {
    answer = JSON.parse(line.slice(NODE_LLAMA_CPP_PROBE_PREFIX.length));
  } catch {
    return [];
  }
  if (!isRecord(answer) || !Array.isArray(answer["names"])) return [];
  const names = answer["names"].filter((n): n is string => typeof n === "string" && n.trim() !== "");
  if (names.length === 0) return [];
  const vram = isRecord(answer["vram"]) ? answer["vram"] : {};
  const share = memoryShare(names, vram, onWarning);
  return names.map((name, index) => ({ id: `vulkan:${index}`, kind: "vulkan", name: name.trim(), ...share }));
}

type Memory = Pick<Device, "memory_total" | "memory_used" | "memory_free" | "unified_memory">;

function memoryShare(names: readonly string[], vram: Record<string, unknown>, onWarning?: WarningSink): Memory {
  const total = parseWholeNumber(vram["total"]) ?? 0;
  const used = Math.min(parseWholeNumber(vram["used"]) ?? 0, total);
  const unified = (parseWholeNumber(vram["unifiedSize"]) ?? 0) > 0;
  const memory = (t: number, u: number): Memory => ({
    memory_total: t,
    memory_used: u,
    memory_free: t - u,
    ...(unified ? { unified_memory: true } : {}),
  });
  if (names.length === 1) return memory(total, used);
  if (names.every((name) => name === names[0])) {
    const each = Math.floor(total / names.length);
    return memory(each, Math.min(Math.floor(used / names.length), each));
  }
  onWarning?.(
    `node-llama-cpp reports ${total} bytes of VRAM for ${names.length} different Vulkan GPUs together; each is listed with 0 bytes`,
  );
  return memory(0, 0);
}

function resolveNodeLlamaCpp(): string | undefined {
  try {
    return pathToFileURL(createRequire(import.meta.url).resolve("node-llama-cpp")).href;
  } catch {
    return undefined;
  }
}
