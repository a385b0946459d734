import { describe, expect, it } from "vitest";
import { FAULT_KINDS, formatReport, inCi, runChaos } from "../src/index.js";

/**
 * The chaos suite's short form, in `npm test` (the whole suite: `npm run test:chaos`, see
 * docs/reliability.md). A real queen, two hive machines (one behind a cuttable link) and a local Hub
 * under a steady load of real requests on stories260K; 75 s of faults, every kind at least once
 * (each round has every kind, in an order the seed decides), checked after each fault and at the end.
 *
 * RBEE_CHAOS_SEED replays a run (its seed is printed). A new seed every run on a developer's machine;
 * under CI a fixed one, so that a submission is judged on the same faults as the run before it (this
 * seed found three defects: a download pinned to a hive just restarted, requests to a queen just
 * restarted, and a dropped connection while a model's header was read). RBEE_CHAOS_SECONDS sets the
 * duration.
 */
const CI_SEED = 1;
const SEED = process.env.RBEE_CHAOS_SEED
  ? Number(process.env.RBEE_CHAOS_SEED)
  : inCi()
    ? CI_SEED
    : Math.floor(Math.random() * 2 ** 31);
const SECONDS = Number(process.env.RBEE_CHAOS_SECONDS ?? 75);

describe(`chaos, short form (seed ${SEED}, ${SECONDS} s of faults)`, () => {
  it(
    "under load, SIGKILLed workers, hives, machines and queens, a cut link and broken downloads: no request hangs or ends unclearly, the cluster comes back to its minimums with no unknown process, no half-written model is Available, nothing durable is lost",
    async () => {
      const lines: string[] = [];
      const report = await runChaos({
        seed: SEED,
        durationMs: SECONDS * 1000,
        log: (line) => {
          lines.push(line);
          process.stdout.write(`${line}\n`); // one plain line per fault, as it happens
        },
      });
      process.stdout.write(`${formatReport(report).join("\n")}\n`);
      expect(report.violations, `seed ${SEED} (RBEE_CHAOS_SEED=${SEED} replays it):\n${lines.join("\n")}`).toEqual([]);
      // the run did what it says: every kind of fault, real requests that succeeded, checked catalogs
      expect(Object.keys(report.faults_by_kind).sort()).toEqual([...FAULT_KINDS].sort());
      expect(report.succeeded).toBeGreaterThan(0);
      expect(report.catalog_entries_checked).toBeGreaterThan(0);
    },
    SECONDS * 1000 + 6 * 60_000,
  );
});
