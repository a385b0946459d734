import { getJson, startRbee, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type Sandbox, sandbox, sandboxProcesses } from "./helpers.js";

/**
 * Issue 15, defect 4: a queen that takes connections but does not answer (SIGSTOP) must not make
 * `rbee status` or `rbee infer` wait forever: they give up after the client timeout, say why, and
 * exit 3. `rbee infer` must not start a second queen beside the stuck one.
 */
describe("the CLI and a queen that does not answer (SIGSTOP) (issue 15: defect 4)", () => {
  let s: Sandbox;
  let queen: ReturnType<typeof startRbee>;

  beforeAll(async () => {
    s = await sandbox();
    const port = Number(new URL(s.queenUrl).port);
    expect(port).toBe(Number(s.env.RBEE_QUEEN_PORT));
    queen = startRbee(["queen", "start", "--foreground", "--port", String(port)], { env: s.env });
    await waitFor(
      async () => ((await getJson(`${s.queenUrl}/health`)).status === 200 ? true : undefined),
      20_000,
      "the queen",
    );
    queen.kill("SIGSTOP");
  });
  afterAll(async () => {
    queen?.kill("SIGCONT");
    await queen?.stop(5000);
    await s?.dispose();
  });

  const env = { RBEE_CLIENT_TIMEOUT_MS: "1500" };

  it("rbee status exits 3 with a message that the queen does not answer", async () => {
    const t0 = performance.now();
    const r = await s.rbee(["status"], { env, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/the queen at http:\/\/127\.0\.0\.1:\d+ does not answer: no answer within 1\.5 s/);
    expect(performance.now() - t0).toBeLessThan(25_000);
  });

  it("rbee infer exits 3 the same way, and starts no other queen", async () => {
    const before = sandboxProcesses(s.cacheDir).length;
    const r = await s.rbee(["infer", "-m", "stories260k", "-p", "Once"], { env, timeoutMs: 30_000 });
    expect(r.code, r.stderr).toBe(3);
    expect(r.stderr).toMatch(/does not answer/);
    expect(r.stderr).not.toMatch(/starting queen/);
    expect(sandboxProcesses(s.cacheDir).length).toBe(before);
  });

  it("a queen that is not running at all is still 'cannot reach' (exit 3), not 'does not answer'", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await s.rbee(["--queen-url", url, "status"], { env, timeoutMs: 30_000 });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot reach the queen/);
  });
});
