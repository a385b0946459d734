import { describe, expect, it } from "vitest";
import { InvalidTransitionError, StateMachine, type TransitionTable } from "../src/state-machine.js";

type Light = "off" | "on" | "broken";
const LIGHT: TransitionTable<Light> = { off: ["on", "broken"], on: ["off", "broken"], broken: [] };

describe("StateMachine", () => {
  it("moves only along its table, and returns the state it left", () => {
    const m = new StateMachine<Light>("lamp", LIGHT, "off");
    expect(m.state).toBe("off");
    expect(m.can("on")).toBe(true);
    expect(m.move("on")).toBe("off");
    expect(m.state).toBe("on");
    expect(m.move("broken")).toBe("on");
    expect(m.can("off")).toBe(false);
  });

  it("refuses a move the table does not allow, naming what, from and to, and keeps its state", () => {
    const m = new StateMachine<Light>("lamp 'hall'", LIGHT, "broken");
    let caught: unknown;
    try {
      m.move("on");
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidTransitionError);
    expect(caught).toMatchObject({ what: "lamp 'hall'", from: "broken", to: "on" });
    expect((caught as Error).message).toBe("lamp 'hall' cannot move from broken to on");
    expect(m.state).toBe("broken");
  });

  it("treats staying in a state as a move that must be listed", () => {
    const m = new StateMachine<Light>("lamp", LIGHT, "on");
    expect(() => m.move("on")).toThrow(InvalidTransitionError);
    const loop = new StateMachine<"a" | "b">("loop", { a: ["a", "b"], b: [] }, "a");
    expect(loop.move("a")).toBe("a");
    expect(loop.state).toBe("a");
  });
});
