import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type WorkerTypeDescriptor, workerLaunchEnv } from "@rbee/contract";

/** The worker program: the example of docs/worker-contract.md, unchanged. */
export const ECHO_WORKER_ENTRY = fileURLToPath(new URL("../../../examples/echo-worker.mjs", import.meta.url));

const MiB = 1024 * 1024;

/**
 * The echo worker type: it "generates" by echoing the prompt back word by word. It loads no model
 * (any model name is served as given) and needs no engine: a way to try a cluster, and the runnable
 * example of docs/worker-types.md. Launched as `node examples/echo-worker.mjs`, configured by the
 * environment every worker gets from its hive (workerLaunchEnv).
 */
export const echoWorkerType: WorkerTypeDescriptor = Object.freeze<WorkerTypeDescriptor>({
  id: "echo",
  description: "example: echoes the prompt back word by word (no model, no engine; for trying the cluster)",
  capabilities: Object.freeze(["text-generation", "chat"] as const),
  deviceKinds: Object.freeze(["cpu"] as const),
  artifact: "none",
  defaults: Object.freeze({ maxContextSize: 4096, parallel: 2 }),
  /** A node process and its buffers. */
  estimateMemory: (_model, o) => {
    const total = 64 * MiB;
    return {
      weights: 0,
      kv_cache: 0,
      compute: 0,
      overhead: total,
      total,
      context_size: 4096,
      parallel: o.parallel ?? 2,
    };
  },
  launch: (spec, ctx) => ({ command: ctx.node, args: [ECHO_WORKER_ENTRY], env: workerLaunchEnv(spec, ctx) }),
  bundledEngines: () => [
    existsSync(ECHO_WORKER_ENTRY)
      ? { id: "echo-worker.mjs", path: ECHO_WORKER_ENTRY, source: "bundled", status: "ok" }
      : {
          id: "echo-worker.mjs",
          path: ECHO_WORKER_ENTRY,
          source: "bundled",
          status: "broken",
          error: `${ECHO_WORKER_ENTRY} is missing: the echo example ships with rbee's repository`,
        },
  ],
});
