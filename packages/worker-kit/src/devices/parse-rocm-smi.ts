import type { Device } from "@rbee/contract";
import { isRecord, parseJsonObject } from "./parse-json-output.js";
import type { ParseOptions } from "./types.js";
import { parseWholeNumber } from "./units.js";

/** The exact arguments detection passes to `rocm-smi`: product names and VRAM, as JSON. */
export const ROCM_SMI_ARGS: readonly string[] = Object.freeze(["--showproductname", "--showmeminfo", "vram", "--json"]);

/**
 * Where the product name may be, best first. ROCm 4-5 write "Card series"/"Card model", ROCm 6
 * "Card Series"/"Card Model", rocm-smi-lib 6.2+ "Device Name"; any of them may be a bare PCI id
 * such as "0x744c", which is skipped for the next one.
 */
const NAME_FIELDS = ["Card Series", "Card Model", "Device Name", "Marketing Name"];

/**
 * Reads the output of `rocm-smi` run with {@link ROCM_SMI_ARGS} into `rocm:<N>` devices, one per
 * `cardN` entry, sorted by N. Field names are matched without regard to case; entries that are not
 * cards (such as "system") are ignored. A card without a readable VRAM total is skipped and reported
 * through `onWarning`, as is output that is not JSON. Never throws.
 */
export function parseRocmSmi(json: string, options: ParseOptions = {}): Device[] {
  const warn = options.onWarning ?? (() => {});
  const root = parseJsonObject(json, "rocm-smi", warn);
  if (root === undefined) return [];
  const devices: { card: number; device: Device }[] = [];
  for (const [key, value] of Object.entries(root)) {
    const card = /^card(\d{1,3})$/i.exec(key)?.[1];
    if (card === undefined) continue;
    if (!isRecord(value)) {
      warn(`rocm-smi printed ${key} without fields; it is skipped`);
      continue;
    }
    const device = cardDevice(Number(card), value, warn);
    if (device !== undefined) devices.push({ card: Number(card), device });
  }
  return devices.sort((a, b) => a.card - b.card).map(({ device }) => device);
}

function cardDevice(
  card: number,
  fields: Record<string, unknown>,
  warn: (message: string) => void,
): Device | undefined {
  const total = parseWholeNumber(field(fields, "VRAM Total Memory (B)"));
  if (total === undefined) {
    warn(`rocm-smi reports no VRAM total for card${card}; it is skipped`);
    return undefined;
  }
  const reportedUsed = parseWholeNumber(field(fields, "VRAM Total Used Memory (B)"));
  if (reportedUsed === undefined) warn(`rocm-smi reports no VRAM use for card${card}; it is taken as free`);
  const used = Math.min(reportedUsed ?? 0, total);
  return {
    id: `rocm:${card}`,
    kind: "rocm",
    name: productName(fields) ?? `AMD GPU (card${card})`,
    memory_total: total,
    memory_used: used,
    memory_free: total - used,
  };
}

function productName(fields: Record<string, unknown>): string | undefined {
  for (const name of NAME_FIELDS) {
    const value = field(fields, name);
    if (typeof value !== "string") continue;
    const text = value.trim();
    if (text === "" || /^0x[0-9a-f]+$/i.test(text) || /^n\/a$/i.test(text)) continue;
    return text;
  }
  return undefined;
}

/** The value of a field, whatever the case of its name. */
function field(fields: Record<string, unknown>, name: string): unknown {
  if (name in fields) return fields[name];
  const lower = name.toLowerCase();
  for (const [key, value] of Object.entries(fields)) if (key.toLowerCase() === lower) return value;
  return undefined;
}
