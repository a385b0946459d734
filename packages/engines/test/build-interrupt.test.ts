import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { requireOrSkip, startRbee, tempRbeeDirs, waitFor } from "@rbee/testing";
import { afterAll, describe, expect, it } from "vitest";
import { findToolchain } from "../src/index.js";

const dirs = tempRbeeDirs("engine-interrupt");
const engines = join(dirs.root, "engines");
afterAll(() => rmSync(dirs.root, { recursive: true, force: true }));

/** Processes (other than this one) whose command line mentions `needle`: cmake, make, the compilers. Linux only. */
function processesMentioning(needle: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (cmdline.includes(needle) && stat.charAt(stat.lastIndexOf(")") + 2) !== "Z")
        found.push(`${entry}: ${cmdline}`);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

const tools = await findToolchain();
const ready =
  process.platform === "linux" &&
  requireOrSkip(
    Boolean(tools.cmake && tools.cxx && tools.git),
    "the interrupted engine build test",
    "it needs cmake, a C++ compiler and git: install them (apt-get install -y cmake g++ git)",
  );

describe.skipIf(!ready)("an interrupted `rbee engine build`", () => {
  it("stops cmake and every compiler it started on Ctrl+C, exits 130, and keeps its work tree", async () => {
    const child = startRbee(["engine", "build", "llama.cpp", "--backend", "cpu", "-j", "1"], {
      env: { ...dirs.env, RBEE_ENGINES_DIR: engines, CI: "true" },
    });
    try {
      await child.waitForLine(/compiling llama-server/, 120_000);
      await waitFor(() => (processesMentioning(engines).length > 0 ? true : undefined), 30_000, "cmake running");
      child.kill("SIGINT");
      const exit = await child.waitForExit(30_000);
      expect(exit.code, child.tail()).toBe(130);
      expect(child.stderr).toMatch(/interrupted; run it again to continue/);
      await waitFor(
        () => (processesMentioning(engines).length === 0 ? true : undefined),
        15_000,
        "no build process left",
      ).catch(() => {
        throw new Error(`build processes left behind:\n${processesMentioning(engines).join("\n")}`);
      });
      const id = readdirSync(join(engines, "llama.cpp")).find((n) => n.startsWith(".build-") && !n.endsWith(".lock"));
      expect(id).toMatch(/^\.build-[0-9a-f]{7}-cpu$/);
      expect(readdirSync(join(engines, "llama.cpp"))).not.toContain(`${id}.lock`);
      expect(readdirSync(join(engines, "llama.cpp", id!)).sort()).toEqual(["build", "build.log", "src"]);
    } finally {
      await child.stop(2000);
    }
  }, 180_000);
});
