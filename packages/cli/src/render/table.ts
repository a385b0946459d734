export interface Column {
  header: string;
  /** Numbers read best right-aligned. Default left. */
  align?: "left" | "right";
}

/** Display width of a string: code points, as terminals count most of what rbee prints. */
function width(text: string): number {
  return [...text].length;
}

function pad(text: string, to: number, align: "left" | "right"): string {
  const fill = " ".repeat(Math.max(0, to - width(text)));
  return align === "right" ? fill + text : text + fill;
}

/**
 * A plain-text table: a header row in capitals, then one row per item, columns separated by two
 * spaces, no trailing whitespace. Cells may not contain newlines (they are replaced by spaces).
 */
export function renderTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const cells = rows.map((row) => columns.map((_, i) => (row[i] ?? "").replace(/[\r\n]+/g, " ")));
  const widths = columns.map((c, i) => Math.max(width(c.header), ...cells.map((r) => width(r[i] ?? ""))));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => pad(v, widths[i] ?? 0, columns[i]?.align ?? "left"))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.header.toUpperCase())), ...cells.map(line)].join("\n");
}
