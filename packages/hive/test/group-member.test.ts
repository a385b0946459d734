import { enginesDir, requireLlamaServerOrSkip } from "@rbee/testing";
import { afterEach, describe, expect, it } from "vitest";
import { startTestHive, type TestHive } from "./helpers/test-hive.js";

/**
 * A hive starting members of a worker group: a shard's RPC server (no authentication) binds one
 * address of this machine, never a wildcard; its port is chosen by the hive and reported; a
 * coordinator must be a llama-server worker. Real ggml-rpc-server from the machine's engines.
 */
const LLAMA_SERVER = requireLlamaServerOrSkip();
let t: TestHive | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** The engines this machine built (the test's own cache has none). */
const machineEngines = () => ({ env: { RBEE_ENGINES_DIR: enginesDir() } });

describe.skipIf(LLAMA_SERVER === undefined)("hive: worker group members", () => {
  it("refuses a shard bound to 0.0.0.0 or :: (400, nothing started), and a group role on the wrong worker type", async () => {
    t = await startTestHive(machineEngines());
    for (const host of ["0.0.0.0", "::", "[::]"]) {
      const r = await t.api.post("/v1/workers", {
        worker_type: "rpc-shard",
        model: "stories260k",
        group: { group_id: "g1", role: "shard", rpc_host: host },
      });
      expect(r.status, r.text).toBe(400);
      expect(r.body.error.param).toBe("group.rpc_host");
      expect(r.body.error.message).toMatch(/no authentication/);
    }
    const wrong = await t.api.post("/v1/workers", {
      worker_type: "rpc-shard",
      model: "stories260k",
      group: {
        group_id: "g1",
        role: "coordinator",
        shards: [{ worker_id: "s", hive_id: "h", device: "cpu", rpc: "127.0.0.1:1" }],
      },
    });
    expect(wrong.status, wrong.text).toBe(400);
    expect(wrong.body.error.message).toMatch(/coordinator is a llama-server worker/);
    expect(t.hive.workers()).toEqual([]);
  });

  it("starts a shard on loopback with a port of its choosing, reports its RPC address, and restarts it there after a SIGKILL", async () => {
    t = await startTestHive(machineEngines());
    const r = await t.api.post("/v1/workers", {
      worker_type: "rpc-shard",
      model: "stories260k",
      threads: 1,
      group: { group_id: "g1", role: "shard", rpc_host: "127.0.0.1" },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.body.group).toMatchObject({
      group_id: "g1",
      role: "shard",
      rpc: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    });
    const rpc = r.body.group.rpc as string;
    process.kill(r.body.pid as number, "SIGKILL");
    const hive = t.hive;
    const back = await new Promise<ReturnType<typeof hive.workers>[number]>((resolve, reject) => {
      const deadline = Date.now() + 60_000;
      const look = setInterval(() => {
        const w = hive.workers()[0];
        if (w && w.restarts === 1 && w.status === "Ready") {
          clearInterval(look);
          resolve(w);
        } else if (Date.now() > deadline) {
          clearInterval(look);
          reject(new Error(`the shard was not restarted: ${JSON.stringify(w)}`));
        }
      }, 100);
    });
    expect(back.group?.rpc).toBe(rpc);
  }, 120_000);
});
