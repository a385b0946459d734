import type { BuildEvent } from "@rbee/engines";
import { describe, expect, it } from "vitest";
import { BuildProgressView, renderBuildBar } from "../src/render/build-progress.js";

function buffer() {
  const out = { text: "", columns: 80, write: (s: string) => (out.text += s) };
  return out;
}

const at = (
  stage: "clone" | "configure" | "compile" | "install",
  percent?: number,
  target?: string,
): Extract<BuildEvent, { type: "progress" }> => ({
  type: "progress",
  id: "de3ff81-cpu",
  backend: "cpu",
  stage,
  percent,
  target,
  goal: "llama-server",
});

describe("the build's progress", () => {
  it("is plain lines off a terminal: one per stage and one per 10% of the compile", () => {
    const out = buffer();
    const view = new BuildProgressView(out, { tty: false });
    view.event({ type: "say", message: "building llama.cpp de3ff81 (cpu)" });
    view.event(at("configure"));
    view.event({ type: "output", id: "de3ff81-cpu", line: "-- Configuring done" });
    for (let p = 0; p <= 100; p++) view.event(at("compile", p, "llama"));
    view.event(at("install"));
    view.finish();
    const lines = out.text.trimEnd().split("\n");
    expect(lines.slice(0, 3)).toEqual([
      "building llama.cpp de3ff81 (cpu)",
      "llama.cpp de3ff81-cpu: configuring (cmake)",
      "llama.cpp de3ff81-cpu: compiling llama-server 0% (llama)",
    ]);
    expect(lines.filter((l) => l.includes("compiling"))).toHaveLength(11);
    expect(lines.at(-1)).toBe("llama.cpp de3ff81-cpu: installing the binaries");
    expect(out.text).not.toContain("Configuring done"); // raw output only with --verbose
  });

  it("is one bar redrawn in place on a terminal, with remarks printed above it", () => {
    const out = buffer();
    const view = new BuildProgressView(out, { tty: true });
    view.event(at("compile", 42, "llama"));
    view.event({ type: "say", message: "a remark" });
    view.finish();
    expect(out.text).toBe(
      `\r\x1b[2K${renderBuildBar(at("compile", 42, "llama"))}\r\x1b[2Ka remark\n${renderBuildBar(at("compile", 42, "llama"))}\n`,
    );
    expect(renderBuildBar(at("compile", 42, "llama"), 80)).toMatch(
      /^llama\.cpp de3ff81-cpu \[#+-+\] {2}42% llama-server \(llama\)$/,
    );
  });
});
