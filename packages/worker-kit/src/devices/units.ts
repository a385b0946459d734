/** Bytes in one MiB (what nvidia-smi calls "MiB" and macOS calls "MB"). */
export const MIB = 1024 * 1024;

/** Bytes in one GiB (what macOS calls "GB" in `system_profiler`). */
export const GIB = 1024 * MIB;

/** A whole non-negative number written in decimal digits (a JSON number is accepted too), else undefined. */
export function parseWholeNumber(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Reads a size such as "8 GB" or "1536 MB" as macOS prints it. macOS means binary units here
 * (an 8 GB card has 8 GiB), so "8 GB" is 8 × 1024³ bytes. Undefined when the text is not a size.
 */
export function parseBinarySize(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(KB|MB|GB|TB)\s*$/i.exec(text);
  if (!match) return undefined;
  const amount = Number(match[1]);
  const unit = match[2]!.toUpperCase();
  const factor = unit === "KB" ? 1024 : unit === "MB" ? MIB : unit === "GB" ? GIB : 1024 * GIB;
  return Math.round(amount * factor);
}

/** The first non-empty line of a command's output, shortened for a log line. */
export function firstLine(text: string, max = 200): string {
  const line = text.split(/\r?\n/).find((l) => l.trim() !== "") ?? "";
  const trimmed = line.trim();
  return trimmed.length > max ? `${trimmed.slice(0, max)}…` : trimmed;
}
