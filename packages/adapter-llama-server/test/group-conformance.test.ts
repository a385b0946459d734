import { dirname, join } from "node:path";
import { freePort } from "@rbee/server-kit";
import {
  describeWorkerConformance,
  getJson,
  requireLlamaServerOrSkip,
  type StartedWorker,
  startLlamaServerWorker,
  startWorker,
} from "@rbee/testing";
import { describe, expect, it } from "vitest";

/**
 * The shared worker contract against a worker group: a llama-server coordinator (`--group`) over two
 * `rbee worker serve rpc-shard` workers (the real ggml-rpc-server of the same build), on loopback.
 * Clients see one worker; the suite is the one every worker passes.
 */
const LLAMA_SERVER = requireLlamaServerOrSkip();
const shards: StartedWorker[] = [];
let coordinator: StartedWorker | undefined;

async function startShard(index: number): Promise<{ worker: StartedWorker; rpc: string }> {
  const port = await freePort();
  const rpcServer = join(dirname(LLAMA_SERVER as string), "ggml-rpc-server");
  const worker = await startWorker(
    "rpc-shard",
    ["--group-id=g-test", "--rpc-host=127.0.0.1", `--rpc-port=${port}`, `--engine=${rpcServer}`, "--threads=1"],
    { model: "stories260k" },
  );
  worker.model = `shard-${index}`;
  shards.push(worker);
  return { worker, rpc: `127.0.0.1:${port}` };
}

async function startGroup(): Promise<StartedWorker> {
  const started = [await startShard(0), await startShard(1)];
  const group = {
    group_id: "g-test",
    role: "coordinator",
    shards: started.map((s, i) => ({ worker_id: `shard-${i}`, hive_id: "local", device: "cpu", rpc: s.rpc })),
    tensor_split: [0.5, 0.5],
  };
  coordinator = await startLlamaServerWorker(LLAMA_SERVER as string, [
    "--parallel",
    "2",
    "--threads",
    "1",
    `--group=${JSON.stringify(group)}`,
  ]);
  return coordinator;
}

async function stopAll(): Promise<void> {
  await coordinator?.child.stop();
  for (const s of shards.splice(0)) await s.child.stop();
}

describe.skipIf(LLAMA_SERVER === undefined)(
  "a worker group (llama-server coordinator over 2 rpc-shard workers)",
  () => {
    describeWorkerConformance("worker group of 2 shards on stories260K (the real ggml-rpc-server and llama-server)", {
      start: async () => {
        const w = await startGroup();
        return { url: w.url, model: w.model, prompt: "Once upon a time", terminate: () => w.child.stop() };
      },
      stop: stopAll,
    });

    it("a shard serves no requests, and refuses to bind its RPC server to every interface", async () => {
      const { worker } = await startShard(9);
      try {
        const info = await getJson(`${worker.url}/info`);
        expect(info.body).toMatchObject({ worker_type: "rpc-shard", capabilities: [] });
        const hb = await fetch(`${worker.url}/v1/infer`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ prompt: "x", max_tokens: 1 }),
        });
        expect(hb.status).toBe(400);
        expect(await hb.text()).toMatch(/shard of worker group g-test: it serves no requests/);
      } finally {
        await stopAll();
      }
      await expect(
        startWorker("rpc-shard", ["--group-id=g", "--rpc-host=0.0.0.0", "--rpc-port=50999"], {
          model: "stories260k",
          timeoutMs: 20_000,
        }),
      ).rejects.toThrow(/may not bind '0\.0\.0\.0'.*no authentication/s);
    }, 120_000);
  },
);
