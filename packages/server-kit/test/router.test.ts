import { describe, expect, it } from "vitest";
import { Router } from "../src/http/router.js";

const noop = () => {};

describe("Router", () => {
  it("finds a route without params again from its memo, and one with params by its segments", () => {
    const router = new Router().get("/v1/models", noop).get("/v1/models/:model", noop).post("/v1/models", noop);
    for (let i = 0; i < 3; i++) {
      const m = router.match("GET", "/v1/models");
      expect(m.route?.pattern).toBe("/v1/models");
      expect(m.route?.method).toBe("GET");
      expect(m.route && "params" in m ? m.params : undefined).toEqual({});
    }
    expect(router.match("POST", "/v1/models").route?.method).toBe("POST");
    expect(router.match("HEAD", "/v1/models").route?.method).toBe("GET");
    const p = router.match("GET", "/v1/models/a%2Fb");
    expect(p.route?.pattern).toBe("/v1/models/:model");
    expect("params" in p && p.params).toEqual({ model: "a/b" });
    const wrong = router.match("DELETE", "/v1/models");
    expect(wrong.route).toBeUndefined();
    expect("allowed" in wrong && wrong.allowed).toEqual(["GET", "POST"]);
  });

  it("keeps first-match order: a param route added first wins over a later static one, memo or not", () => {
    const router = new Router().get("/a/:x", noop).get("/a/b", noop);
    expect(router.match("GET", "/a/b").route?.pattern).toBe("/a/:x");
    expect(router.match("GET", "/a/b").route?.pattern).toBe("/a/:x");
  });

  it("a route added after a lookup is found (the memo is dropped)", () => {
    const router = new Router().get("/x", noop);
    expect(router.match("GET", "/x").route?.pattern).toBe("/x");
    expect(router.match("GET", "/y").route).toBeUndefined();
    router.get("/y", noop);
    expect(router.match("GET", "/y").route?.pattern).toBe("/y");
    // a path that matched a static route is memoized under its own spelling only
    expect(router.match("GET", "//x/").route?.pattern).toBe("/x");
  });
});
