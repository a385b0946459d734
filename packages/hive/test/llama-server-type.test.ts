import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HiveWorkerTypes, type InstalledWorkerType } from "@rbee/contract";
import { isPidAlive } from "@rbee/server-kit";
import { postJson, requireLlamaServerOrSkip, requireStoriesModel, runRbee, waitFor } from "@rbee/testing";
import { afterEach, describe, expect, it } from "vitest";
import { startTestHive, type TestHive } from "./helpers/test-hive.js";

/**
 * The llama-server worker type through a hive: listed by the worker catalog from the machine's
 * engines, spawned like any worker, restarted with its adapter when llama-server dies, and refused
 * with how to install it where its engine is missing or broken.
 */
const LLAMA_SERVER = requireLlamaServerOrSkip();

let t: TestHive | undefined;
let engines: string | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
  if (engines) await rm(engines, { recursive: true, force: true });
  engines = undefined;
});

const typeOf = async (hive: TestHive, id: string): Promise<InstalledWorkerType | undefined> =>
  HiveWorkerTypes.parse((await hive.api.get("/v1/worker-types?refresh=1")).body).worker_types.find((w) => w.id === id);

describe("hive: the llama-server type where its engine is missing or broken", () => {
  it("is Failed with how to install it, and a spawn of it is a 409 that says so; nothing is started", async () => {
    t = await startTestHive({ findEngines: async () => [] });
    const type = await typeOf(t, "llama-server");
    expect(type).toMatchObject({ status: "Failed", runs_on: [], engines: [] });
    expect(type?.error).toMatch(/llama-server was not found on this machine.*rbee engine build llama\.cpp/);
    const r = await t.api.post("/v1/workers", { worker_type: "llama-server", model: requireStoriesModel() });
    expect(r.status, r.text).toBe(409);
    expect(r.body.error).toMatchObject({ code: "worker_type_not_installed", param: "worker_type" });
    expect(r.body.error.message).toMatch(/rbee engine add llama-server <path>/);
    expect(t.hive.workers()).toEqual([]);
  });

  it("a broken binary is named with its path and why", async () => {
    const broken = {
      id: "llama-server",
      path: "/opt/llama/bin/llama-server",
      source: "added" as const,
      status: "broken" as const,
      error: "exec format error (not a program for this machine)",
    };
    t = await startTestHive({ findEngines: async () => [broken] });
    const type = await typeOf(t, "llama-server");
    expect(type?.status).toBe("Failed");
    expect(type?.error).toContain("/opt/llama/bin/llama-server: exec format error");
  });
});

describe.skipIf(LLAMA_SERVER === undefined)("hive: the llama-server type on the real llama-server", () => {
  it("`rbee engine add` makes it Available; the hive spawns it; llama-server killed, the hive restarts the pair", async () => {
    engines = await mkdtemp(join(tmpdir(), "rbee-engines-"));
    const added = await runRbee(["engine", "add", "llama-server", LLAMA_SERVER as string], {
      env: { RBEE_ENGINES_DIR: engines },
    });
    expect(added.code, added.stderr).toBe(0);
    t = await startTestHive({ env: { RBEE_DEVICES: "[]", RBEE_ENGINES_DIR: engines } });
    const type = await typeOf(t, "llama-server");
    expect(type).toMatchObject({ status: "Available", runs_on: ["cpu", "cuda", "metal", "vulkan", "rocm"] });
    expect(type?.engines).toMatchObject([{ id: "llama-server", path: LLAMA_SERVER, source: "added", status: "ok" }]);

    expect((await t.api.post("/v1/models", { ref: requireStoriesModel() })).status).toBe(200);
    const r = await t.api.post("/v1/workers", {
      worker_type: "llama-server",
      model: "stories260k",
      worker_id: "ls-1",
      parallel: 2,
      threads: 1,
    });
    expect(r.status, r.text).toBe(201);
    expect(r.body).toMatchObject({ worker_type: "llama-server", capabilities: expect.arrayContaining(["embeddings"]) });
    const infer = (url: string) =>
      postJson(
        `${url}/v1/infer`,
        { prompt: "Once upon a time", max_tokens: 12, temperature: 0 },
        { token: t?.hive.token },
      );
    const first = await infer(r.body.url);
    expect(first.status, first.text).toBe(200);
    expect(first.body.text).toMatch(/^, there was a little girl named Lily/);

    // llama-server dies: the adapter exits with it, and the hive restarts both
    const engine = await waitFor(
      () => llamaServerChildOf(r.body.pid as number),
      10_000,
      "the adapter's llama-server process",
    );
    process.kill(engine, "SIGKILL");
    const back = await waitFor(
      () => {
        const w = t?.hive.workers().find((x) => x.worker_id === "ls-1");
        return w && w.restarts >= 1 && w.status === "Ready" ? w : undefined;
      },
      90_000,
      "the hive to restart the llama-server worker",
    );
    expect(back.last_exit?.reason).toMatch(/exited with code 1/);
    expect(isPidAlive(engine)).toBe(false);
    const again = await infer(back.url);
    expect(again.status, again.text).toBe(200);
    expect(again.body.text).toBe(first.body.text);
  }, 180_000);
});

/** The llama-server process the adapter `pid` started (Linux: from /proc). */
async function llamaServerChildOf(pid: number): Promise<number | undefined> {
  const { readdirSync, readFileSync } = await import("node:fs");
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8");
      if (ppid === pid && cmd.includes("llama-server")) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}
