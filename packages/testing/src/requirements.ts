const announced = new Set<string>();

/** True when the tests run in CI (CI=true), where every system requirement is installed (.ci/run). */
export function inCi(): boolean {
  return /^(1|true|yes)$/i.test(process.env.CI ?? "");
}

/**
 * For tests that need something of the system (a service such as sshd, a tool such as cmake):
 * true when `present`; otherwise, on a developer's machine, one line on stderr that says what is
 * skipped and what to install, and false (skip with `describe.skipIf`); under CI=true an error,
 * since CI installs everything the tests need and a missing piece is a broken run.
 */
export function requireOrSkip(present: boolean, what: string, howToGet: string): boolean {
  if (present) return true;
  const message = `${what}: ${howToGet}`;
  if (inCi()) throw new Error(`${message} (CI installs it, so its absence fails the run)`);
  if (!announced.has(message)) {
    announced.add(message);
    process.stderr.write(`skipping ${message}\n`);
  }
  return false;
}
