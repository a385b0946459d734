import { createWriteStream, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isPidAlive } from "@rbee/server-kit";
import { waitFor } from "@rbee/testing";
import { afterAll, describe, expect, it } from "vitest";
import { BuildAbortedError, BuildStepError, runLogged } from "../src/run-logged.js";

const root = mkdtempSync(join(tmpdir(), "rbee-engines-run-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function options(name: string, signal?: AbortSignal) {
  const logPath = join(root, `${name}.log`);
  const lines: string[] = [];
  return {
    lines,
    logPath,
    o: {
      step: name,
      cwd: root,
      env: process.env,
      log: createWriteStream(logPath),
      logPath,
      onLine: (l: string) => lines.push(l),
      signal,
    },
  };
}

describe("runLogged", () => {
  it("hands over lines, logs everything, and on failure names the exit code, the last lines and the log", async () => {
    const { o, lines, logPath } = options("fails");
    const script = 'for i in $(seq 1 40); do echo "[ $i%] line $i"; done; echo "error: it broke" >&2; exit 3';
    const err = await runLogged("sh", ["-c", script], o).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildStepError);
    const e = err as BuildStepError;
    expect(e.exitCode).toBe(3);
    expect(e.tail).toHaveLength(30);
    expect(e.tail.at(-1)).toBe("error: it broke");
    expect(e.message).toMatch(/fails failed \(exit code 3\)/);
    expect(e.message).toContain(`full log: ${logPath}`);
    expect(lines).toHaveLength(41);
    await new Promise<void>((r) => o.log.end(r));
    expect(readFileSync(logPath, "utf8")).toContain("[ 1%] line 1\n");
  });

  it("kills the command and every process it started when aborted", async () => {
    const controller = new AbortController();
    const { o, lines } = options("aborted", controller.signal);
    // a stand-in for cmake → make → compilers: a shell that starts grandchildren and reports their pids
    const script = "sleep 300 & echo child $!; (sleep 300 & echo grandchild $!; wait) & wait";
    const run = runLogged("sh", ["-c", script], o);
    await waitFor(() => (lines.length >= 2 ? true : undefined), 10_000, "the pids");
    const pids = lines.map((l) => Number(l.split(" ")[1]));
    expect(pids.every(isPidAlive)).toBe(true);
    controller.abort();
    await expect(run).rejects.toBeInstanceOf(BuildAbortedError);
    await waitFor(() => (pids.some(isPidAlive) ? undefined : true), 10_000, "no process left");
  });
});
