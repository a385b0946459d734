import { QueueFullError } from "@rbee/contract";
import { describe, expect, it } from "vitest";
import { Admission } from "../src/admission.js";

describe("Admission (slots and a bounded queue)", () => {
  it("runs `slots` at once, queues the rest in order, and refuses past the queue limit with 429", async () => {
    const a = new Admission(2, 2);
    const r1 = await a.acquire();
    const r2 = await a.acquire();
    const order: number[] = [];
    const q3 = a.acquire().then((r) => {
      order.push(3);
      return r;
    });
    const q4 = a.acquire().then((r) => {
      order.push(4);
      return r;
    });
    const refused = await a.acquire().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(QueueFullError);
    expect((refused as QueueFullError).statusCode).toBe(429);
    expect((refused as QueueFullError).retryAfterSeconds).toBeGreaterThanOrEqual(1);
    expect([a.inFlight, a.queued]).toEqual([2, 2]);
    r1();
    r1(); // release is idempotent
    const r3 = await q3;
    expect([a.inFlight, a.queued]).toEqual([2, 1]);
    r2();
    const r4 = await q4;
    expect(order).toEqual([3, 4]);
    r3();
    r4();
    await a.idle();
    expect(a.inFlight).toBe(0);
  });

  it("drops a queued request whose signal aborts, without taking a slot", async () => {
    const a = new Admission(1, 4);
    const r1 = await a.acquire();
    const ac = new AbortController();
    const waiting = a.acquire(ac.signal);
    ac.abort(new Error("client left"));
    await expect(waiting).rejects.toThrow("client left");
    expect(a.queued).toBe(0);
    r1();
    expect(a.inFlight).toBe(0);
  });

  it("rejects every queued request on shutdown", async () => {
    const a = new Admission(1, 4);
    await a.acquire();
    const waiting = [a.acquire(), a.acquire()];
    a.rejectQueued(new QueueFullError(0, 0));
    for (const w of waiting) await expect(w).rejects.toBeInstanceOf(QueueFullError);
  });
});
