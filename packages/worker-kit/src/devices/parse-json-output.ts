import type { WarningSink } from "./types.js";

/**
 * Parses the JSON a tool printed, leniently: text before the first `{` or after the last `}` (a
 * warning some versions print around it) is ignored. Undefined, with a warning, when there is no
 * JSON object to read. Never throws.
 */
export function parseJsonObject(text: string, tool: string, warn: WarningSink): Record<string, unknown> | undefined {
  if (text.trim() === "") {
    warn(`${tool} printed nothing`);
    return undefined;
  }
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  if (start === -1 || end < start) {
    warn(`${tool} printed no JSON: ${JSON.stringify(text.trim().slice(0, 200))}`);
    return undefined;
  }
  try {
    const value: unknown = JSON.parse(text.slice(start, end + 1));
    if (isRecord(value)) return value;
    warn(`${tool} printed JSON that is not an object`);
  } catch (err) {
    warn(`${tool} printed JSON that cannot be read (${err instanceof Error ? err.message : String(err)})`);
  }
  return undefined;
}

/** True for a plain JSON object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
