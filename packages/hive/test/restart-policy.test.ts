import { describe, expect, it } from "vitest";
import { describeExit, toWorkerExit } from "../src/exit-reason.js";
import { DEFAULT_RESTART_POLICY, RestartPolicy } from "../src/restart-policy.js";

describe("RestartPolicy", () => {
  it("defaults to 5 restarts within 10 minutes, backoff 1 s doubling up to 30 s", () => {
    expect(DEFAULT_RESTART_POLICY).toEqual({
      maxRestarts: 5,
      backoffMs: 1000,
      maxBackoffMs: 30_000,
      windowMs: 600_000,
    });
    const policy = new RestartPolicy();
    const times: number[] = [];
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const d = policy.next(times, 1000 + i);
      if (!d.restart) throw new Error("gave up too early");
      delays.push(d.delayMs);
      times.push(1000 + i);
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000]);
    expect(policy.next(times, 2000)).toEqual({ restart: false, restartsInWindow: 5 });
  });

  it("caps the backoff, and forgets restarts older than the window", () => {
    const policy = new RestartPolicy({ maxRestarts: 10, backoffMs: 1000, maxBackoffMs: 5000, windowMs: 60_000 });
    const times = [0, 1, 2, 50_000];
    expect(policy.next(times, 10)).toEqual({ restart: true, delayMs: 5000 });
    expect(policy.next(times, 60_003)).toEqual({ restart: true, delayMs: 2000 });
    expect(times).toEqual([50_000]);
  });
});

describe("exit reasons", () => {
  it("say how a process ended, in words", () => {
    expect(describeExit({ code: 1, signal: null })).toBe("exited with code 1");
    expect(describeExit({ code: null, signal: "SIGKILL" })).toBe("killed by SIGKILL");
    expect(describeExit({ code: null, signal: null, error: "spawn EAGAIN" })).toBe(
      "could not be started: spawn EAGAIN",
    );
    const at = new Date("2026-01-01T00:00:00.000Z");
    expect(toWorkerExit({ code: 0, signal: null }, "stopped by request", at)).toEqual({
      code: 0,
      signal: null,
      at: "2026-01-01T00:00:00.000Z",
      reason: "stopped by request (exited with code 0)",
    });
  });
});
