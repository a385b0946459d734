import { describe, expect, it } from "vitest";
import { StopMatcher } from "../src/stop-matcher.js";

function run(stops: string[], pieces: string[]) {
  const m = new StopMatcher(stops);
  let out = "";
  for (const p of pieces) {
    const r = m.push(p);
    out += r.emit;
    if (r.stopped) return { out, stopped: true };
  }
  return { out: out + m.flush(), stopped: false };
}

describe("StopMatcher", () => {
  it("passes text through when there are no stops", () => {
    expect(run([], ["a", "b"])).toEqual({ out: "ab", stopped: false });
  });
  it("cuts at a stop inside one piece", () => {
    expect(run(["END"], ["abcENDdef"])).toEqual({ out: "abc", stopped: true });
  });
  it("finds a stop split across pieces and never emits its start", () => {
    const m = new StopMatcher(["\nUser:"]);
    expect(m.push("Hi there\nUs")).toEqual({ emit: "Hi there", stopped: false });
    expect(m.push("er: more")).toEqual({ emit: "", stopped: true });
  });
  it("releases held text when it turns out not to be a stop", () => {
    const m = new StopMatcher(["STOP"]);
    expect(m.push("ab ST")).toEqual({ emit: "ab ", stopped: false });
    expect(m.push("ART")).toEqual({ emit: "START", stopped: false });
  });
  it("flushes held text at the end of generation", () => {
    expect(run(["STOP"], ["x ST"])).toEqual({ out: "x ST", stopped: false });
  });
  it("cuts at the earliest of several stops", () => {
    expect(run(["b", "a"], ["xxabyy"])).toEqual({ out: "xx", stopped: true });
  });
  it("says which stop ended the text", () => {
    const m = new StopMatcher(["b", "a"]);
    expect(m.matched).toBeUndefined();
    m.push("xxabyy");
    expect(m.matched).toBe("a");
  });
});
