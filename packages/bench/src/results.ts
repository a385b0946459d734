import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "@rbee/testing";

/** Writes a suite's results to bench/results/<suite>-<time>.json and <suite>-latest.json. */
export function saveResults(suite: string, data: Record<string, unknown>): string {
  const dir = join(REPO_ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const doc = {
    suite,
    at: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, load: loadavg(), node: process.version },
    ...data,
  };
  const text = `${JSON.stringify(doc, null, 2)}\n`;
  const file = join(dir, `${suite}-${stamp}.json`);
  writeFileSync(file, text);
  writeFileSync(join(dir, `${suite}-latest.json`), text);
  return file;
}

/** A verdict line for a target ratio. */
export function verdict(name: string, value: number, target: number): string {
  return `${value >= target ? "meets" : "MISSES"} target: ${name} = ${value.toFixed(3)} (target ≥ ${target})`;
}

/** A verdict line for a figure that should stay at or below a target (costs, latencies). */
export function verdictAtMost(name: string, value: number, target: number, unit = ""): string {
  return `${value <= target ? "meets" : "MISSES"} target: ${name} = ${value.toFixed(3)}${unit} (target ≤ ${target}${unit})`;
}
