import { RbeeError } from "@rbee/contract";
import type { WorkerEngine } from "./engine.js";
import { WorkerRuntime, type WorkerRuntimeOptions } from "./worker-runtime.js";

/**
 * The main of a worker process: starts the runtime, turns SIGTERM/SIGINT into a graceful shutdown
 * (a second signal exits at once), and exits 0 after a clean stop or 1 with one clear line on stderr
 * when the worker cannot start.
 */
export async function runWorker(engine: WorkerEngine, options: WorkerRuntimeOptions): Promise<never> {
  const log = options.log;
  let runtime: WorkerRuntime;
  try {
    runtime = new WorkerRuntime(engine, options);
  } catch (err) {
    return fail(err);
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, "second signal; exiting now");
      process.exit(130);
    }
    void runtime.shutdown(`received ${signal}`);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("uncaughtException", (err) => {
    log.fatal({ err }, "uncaught exception; exiting");
    process.exit(1);
  });
  process.on("unhandledRejection", (err) => {
    log.fatal({ err }, "unhandled rejection; exiting");
    process.exit(1);
  });
  try {
    await runtime.start();
  } catch (err) {
    log.error({ err }, "worker failed to start");
    return fail(err);
  }
  await runtime.done;
  process.exit(0);
}

function fail(err: unknown): never {
  const message = err instanceof RbeeError || err instanceof Error ? err.message : String(err);
  process.stderr.write(`rbee worker: ${message}\n`);
  process.exit(1);
}
