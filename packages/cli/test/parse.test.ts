import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { collect, intArg, keepAliveArg, numberArg, urlArg } from "../src/parse.js";

describe("flag parsing", () => {
  it("keep-alive durations pass as the queen takes them", () => {
    expect(keepAliveArg("30s")).toBe("30s");
    expect(keepAliveArg("5m")).toBe("5m");
    expect(keepAliveArg("1.5h")).toBe("1.5h");
    expect(keepAliveArg("250ms")).toBe("250ms");
    expect(keepAliveArg("90")).toBe(90);
    expect(keepAliveArg("0")).toBe(0);
    expect(keepAliveArg("forever")).toBe(-1);
    expect(keepAliveArg("-1")).toBe(-1);
  });

  it("a malformed duration is refused with the forms that work", () => {
    for (const bad of ["", "5 minutes", "m5", "1d", "abc"]) {
      expect(() => keepAliveArg(bad)).toThrow(InvalidArgumentError);
    }
    expect(() => keepAliveArg("1d")).toThrow(/30s, 5m, 1h/);
  });

  it("repeatable options collect every value", () => {
    expect(collect("b", collect("a", undefined))).toEqual(["a", "b"]);
    expect(() => collect("", undefined)).toThrow(InvalidArgumentError);
  });

  it("numbers are checked against their range", () => {
    expect(intArg(1)("40")).toBe(40);
    expect(() => intArg(1)("0")).toThrow(/≥ 1/);
    expect(() => intArg(1)("1.5")).toThrow(InvalidArgumentError);
    expect(() => intArg(0, 10)("11")).toThrow(/from 0 to 10/);
    expect(numberArg(0, 10)("0.7")).toBe(0.7);
    expect(() => numberArg(0, 1)("1.1")).toThrow(InvalidArgumentError);
  });

  it("URLs lose trailing slashes; other schemes are refused", () => {
    expect(urlArg("http://127.0.0.1:7833/")).toBe("http://127.0.0.1:7833");
    expect(() => urlArg("ftp://x")).toThrow(InvalidArgumentError);
    expect(() => urlArg("not a url")).toThrow(InvalidArgumentError);
  });
});
