/** The exact arguments detection passes to `vm_stat` (none). */
export const VM_STAT_ARGS: readonly string[] = Object.freeze([]);

/**
 * Reads the output of macOS `vm_stat` into the bytes of memory a new model can take without
 * swapping: free plus inactive pages, times the page size the header names ("page size of 16384
 * bytes"). Undefined when the output lacks any of these.
 */
export function parseVmStat(text: string): number | undefined {
  const pageSize = /page size of (\d+) bytes/i.exec(text)?.[1];
  const free = pages(text, "Pages free");
  const inactive = pages(text, "Pages inactive");
  if (pageSize === undefined || free === undefined || inactive === undefined) return undefined;
  return (free + inactive) * Number(pageSize);
}

function pages(text: string, label: string): number | undefined {
  const match = new RegExp(`^${label}:\\s+(\\d+)\\.?\\s*$`, "m").exec(text);
  return match ? Number(match[1]) : undefined;
}
