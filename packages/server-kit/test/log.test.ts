import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "rbee-log-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A child process logs through createLogger into a file and reports what the file holds at each
 * step (the real logger, its real destination, the real exit).
 */
function runChild(file: string, exitWith: "exit" | "throw"): { steps: string[][]; final: string[] } {
  const script = `
    import { readFileSync } from "node:fs";
    import { createLogger, REQUEST_LOG_MSG } from "@rbee/server-kit";
    const file = ${JSON.stringify(file)};
    const log = createLogger({ service: "test", destination: file });
    const seen = () => { try { return readFileSync(file, "utf8").split("\\n").filter(Boolean).map((l) => JSON.parse(l).n); } catch { return []; } };
    const steps = [];
    log.info({ n: "started" }, "started");
    steps.push(seen());
    log.info({ n: "r1" }, REQUEST_LOG_MSG);
    log.info({ n: "r2" }, REQUEST_LOG_MSG);
    steps.push(seen());
    log.warn({ n: "warned" }, "something odd");
    steps.push(seen());
    log.info({ n: "r3" }, REQUEST_LOG_MSG);
    await new Promise((r) => setTimeout(r, 300));
    steps.push(seen());
    log.info({ n: "r4" }, REQUEST_LOG_MSG);
    console.log(JSON.stringify(steps));
    ${exitWith === "exit" ? "process.exit(0);" : 'throw new Error("boom");'}
  `;
  let out: string;
  try {
    out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (err) {
    out = (err as { stdout: string }).stdout;
  }
  const final = readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { n?: string }).n ?? "");
  return { steps: JSON.parse(out.trim().split("\n")[0] ?? "[]") as string[][], final };
}

describe("createLogger", () => {
  it("writes other lines at once, request lines in batches that any other line, a timer or the exit writes", () => {
    const { steps, final } = runChild(join(dir, "exit.log"), "exit");
    expect(steps[0]).toEqual(["started"]);
    // request lines wait...
    expect(steps[1]).toEqual(["started"]);
    // ... until the next other line, which comes after them
    expect(steps[2]).toEqual(["started", "r1", "r2", "warned"]);
    // ... or until their timer (50 ms)
    expect(steps[3]).toEqual(["started", "r1", "r2", "warned", "r3"]);
    // ... or the exit
    expect(final).toEqual(["started", "r1", "r2", "warned", "r3", "r4"]);
  });

  it("loses no request line when the process dies of an uncaught exception", () => {
    const { final } = runChild(join(dir, "throw.log"), "throw");
    expect(final).toEqual(["started", "r1", "r2", "warned", "r3", "r4"]);
  });
});
