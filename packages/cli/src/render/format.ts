/** Human-readable numbers for tables and progress lines. */

const BYTE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** 1536 → "1.5 KiB"; three significant digits at most. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "?";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${value} B`;
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  const text = value.toFixed(digits);
  // "1.50" → "1.5", "2.00" → "2", but "650" stays "650"
  return `${digits > 0 ? text.replace(/\.?0+$/, "") : text} ${BYTE_UNITS[unit]}`;
}

/** Milliseconds as a short duration: "250ms", "4.2s", "3m 20s", "2h 5m", "3d 4h"; null/Infinity is "forever". */
export function formatDuration(ms: number | null): string {
  if (ms === null || ms === Number.POSITIVE_INFINITY) return "forever";
  if (!Number.isFinite(ms) || ms < 0) return "?";
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? (Math.floor(s * 10) / 10).toString() : Math.floor(s)}s`;
  const total = Math.floor(s);
  const d = Math.floor(total / 86_400);
  const h = Math.floor((total % 86_400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${sec}s`;
}

/** A count with its unit, bytes shown as sizes: (1048576, "bytes") → "1 MiB", (12, "tokens") → "12 tokens". */
export function formatAmount(n: number, unit: string): string {
  if (unit === "bytes" || unit === "B") return formatBytes(n);
  const shown = Number.isInteger(n) ? String(n) : n.toFixed(1);
  return unit === "" ? shown : `${shown} ${unit}`;
}

/** A rate: (2_500_000, "bytes") → "2.38 MiB/s", (41.6, "tokens") → "41.6 tokens/s". */
export function formatRate(perSecond: number, unit: string): string {
  if (unit === "bytes" || unit === "B") return `${formatBytes(Math.round(perSecond))}/s`;
  return `${perSecond >= 100 ? Math.round(perSecond) : perSecond.toFixed(1)} ${unit}/s`;
}
