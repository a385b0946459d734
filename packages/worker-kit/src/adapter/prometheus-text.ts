/**
 * Reads the samples of a Prometheus text exposition leniently: `name{labels} value [timestamp]` lines,
 * comments and malformed lines skipped. Keys are the metric name with its label set as written
 * (`name` or `name{a="b"}`); a value that is not a number is skipped.
 */
export function parsePrometheusText(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[2]);
    if (Number.isNaN(value) && m[2] !== "NaN") continue;
    samples.set(m[1] as string, value);
  }
  return samples;
}
