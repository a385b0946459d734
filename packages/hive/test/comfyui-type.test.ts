import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { HiveWorkerTypes, ImageResponse } from "@rbee/contract";
import { COMFYUI_FIXTURE_SERVE, postSse, waitFor } from "@rbee/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestHive, type TestHive } from "./helpers/test-hive.js";

// The comfyui worker type supervised by a real hive, in start mode: the adapter runs
// `<python> main.py --listen 127.0.0.1 --port <n>` in a ComfyUI checkout. Here the "checkout" holds a
// main.py that loads the ComfyUI API FIXTURE (not ComfyUI), and the "python" is node, which runs it.
let t: TestHive;
interface Listed {
  worker_id: string;
  url: string;
  status: string;
  restarts: number;
  pid: number | null;
  last_exit: { reason: string } | null;
}
const worker = (r: { body: { workers: Listed[] } }) => r.body.workers.find((w) => w.worker_id === "comfy-1") as Listed;
const checkout = mkdtempSync(join(tmpdir(), "rbee-comfyui-checkout-"));
beforeAll(async () => {
  writeFileSync(join(checkout, "main.py"), `import(${JSON.stringify(pathToFileURL(COMFYUI_FIXTURE_SERVE).href)});\n`);
  // workers inherit the hive process's environment (this test file runs in a process of its own)
  process.env.RBEE_COMFYUI_DIR = checkout;
  process.env.RBEE_COMFYUI_PYTHON = process.execPath;
  process.env.COMFYUI_FIXTURE_STEP_MS = "20";
  t = await startTestHive({
    env: { PATH: process.env.PATH },
    restart: { maxRestarts: 2, backoffMs: 100, maxBackoffMs: 400, windowMs: 60_000 },
  });
});
afterAll(async () => {
  await t?.close();
  delete process.env.RBEE_COMFYUI_DIR;
  delete process.env.RBEE_COMFYUI_PYTHON;
  delete process.env.COMFYUI_FIXTURE_STEP_MS;
});

describe("hive: the comfyui type, starting ComfyUI itself (ComfyUI API fixture as main.py)", () => {
  it("is Available on every device kind: it needs no engine binary the hive knows", async () => {
    const types = HiveWorkerTypes.parse((await t.api.get("/v1/worker-types?refresh=1")).body).worker_types;
    expect(types.find((w) => w.id === "comfyui")).toMatchObject({
      status: "Available",
      artifact: "none",
      capabilities: ["image-generation", "workflow"],
    });
  });

  it("ComfyUI dying mid-generation ends the request with an error (never a hang), and the hive restarts the worker with a new ComfyUI", async () => {
    const r = await t.api.post("/v1/workers", { worker_type: "comfyui", model: "fixture-sd15", worker_id: "comfy-1" });
    expect(r.status, r.text).toBe(201);
    const first = r.body as { url: string; pid: number };
    const generate = (prompt: string) =>
      postSse(
        `${first.url}/v1/images`,
        { prompt, width: 64, height: 64, steps: 20, stream: true },
        { token: t.hive.token },
      );
    const ok = await generate("a bee");
    expect(ok.events.at(-1)?.event).toBe("done");
    expect(ImageResponse.parse(ok.events.at(-1)?.data).images).toHaveLength(1);

    // the fixture exits with code 1 half-way through the sampler, as a crashed ComfyUI does
    const crashed = await generate("a bee CRASH-ENGINE");
    expect(crashed.events.some((e) => e.event === "progress")).toBe(true);
    const last = crashed.events.at(-1);
    expect(last?.event).toBe("error");
    expect(String((last?.data as { code?: string } | undefined)?.code)).toMatch(/^(engine_restarted|shutting_down)$/);

    // the adapter exits non-zero with its engine; the hive restarts it, and it starts a new ComfyUI
    const back = await waitFor(async () => {
      const w = worker(await t.api.get("/v1/workers"));
      return w.status === "Ready" && w.restarts === 1 && w.pid !== first.pid ? w : undefined;
    }, 60_000);
    expect(back.restarts).toBe(1);
    const again = worker(await t.api.get("/v1/workers"));
    expect(again.last_exit?.reason).toBe("exited with code 1");
    const after = await postSse(
      `${again.url}/v1/images`,
      { prompt: "a bee again", width: 64, height: 64, steps: 4, stream: true },
      { token: t.hive.token },
    );
    expect(after.events.at(-1)?.event).toBe("done");
    expect((await t.api.delete("/v1/workers/comfy-1")).status).toBe(200);
  }, 120_000);
});
