import { currentBuild, type EngineBuildRecord, type EngineId } from "@rbee/engines";
import { enginesDir } from "@rbee/server-kit";
import { inCi } from "@rbee/testing";
import { it } from "vitest";

/** This machine's engines dir (where `npx rbee engine build llama.cpp` puts its build), as the tests' environment says. */
export const MACHINE_ENGINES_DIR = enginesDir(process.env);

/** The CPU build of llama.cpp on this machine, or undefined. */
export async function machineBuild(): Promise<
  { dir: string; record: EngineBuildRecord; bin: (id: EngineId) => string } | undefined
> {
  return currentBuild(MACHINE_ENGINES_DIR, "cpu");
}

const BUILD_COMMAND = "npx rbee engine build llama.cpp";

/**
 * For tests that need the real llama.cpp binaries: without a build they are skipped with a line
 * naming the command that makes one; under CI=true a missing build is a failure (CI builds it first).
 */
export function needsBuild(found: unknown, what: string): boolean {
  if (found) return true;
  const why = `no llama.cpp build in ${MACHINE_ENGINES_DIR}; run \`${BUILD_COMMAND}\``;
  if (inCi()) {
    it(`${what}: the llama.cpp build is there (CI builds it before the tests)`, () => {
      throw new Error(why);
    });
  } else {
    process.stderr.write(`skipping ${what}: ${why}\n`);
    it.skip(`${what} (skipped: ${why})`, () => {});
  }
  return false;
}
