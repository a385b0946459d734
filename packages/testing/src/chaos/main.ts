import { parseArgs } from "node:util";
import { formatReport, runChaos } from "./chaos-run.js";

/**
 * `npm run test:chaos [-- --minutes N | --seconds N] [--seed S]`: the chaos suite on its own, 5
 * minutes of faults by default. RBEE_CHAOS_SEED replays a run (its seed is printed first), and
 * RBEE_CHAOS_SECONDS sets the duration. Exits 1 when a check failed.
 */
const { values } = parseArgs({
  options: { minutes: { type: "string" }, seconds: { type: "string" }, seed: { type: "string" } },
});
const seconds = values.seconds ?? process.env.RBEE_CHAOS_SECONDS;
const durationMs = values.minutes ? Number(values.minutes) * 60_000 : seconds ? Number(seconds) * 1000 : 5 * 60_000;
const seedText = values.seed ?? process.env.RBEE_CHAOS_SEED;
const seed = seedText ? Number(seedText) : Math.floor(Math.random() * 2 ** 31);
if (!Number.isFinite(durationMs) || durationMs <= 0 || !Number.isInteger(seed) || seed < 0) {
  console.error("usage: npm run test:chaos -- [--minutes N | --seconds N] [--seed S] (a whole number >= 0)");
  process.exit(2);
}
// bounded in time whatever happens: a run that has not ended long after its faults stopped is a failure
const watchdogMs = durationMs + 15 * 60_000;
setTimeout(() => {
  console.error(`chaos: seed ${seed}: the run did not end within ${Math.round(watchdogMs / 60_000)} min; giving up`);
  process.exit(1);
}, watchdogMs).unref();
const report = await runChaos({ seed, durationMs });
for (const line of formatReport(report)) console.log(line);
process.exit(report.violations.length === 0 ? 0 : 1);
