import { RbeeError } from "@rbee/contract";
import type { WorkerEngine } from "./engine.js";
import { resolveWorkerOptions } from "./worker-options.js";
import { WorkerRuntime, type WorkerRuntimeOptions } from "./worker-runtime.js";

/**
 * The main of a worker process: starts the runtime, turns SIGTERM/SIGINT into a graceful shutdown
 * (a second signal exits at once), and exits 0 after a clean stop, 1 when the engine failed while
 * serving (LoadContext.fail), or 1 with one clear line on stderr when the worker cannot start.
 */
export async function runWorker(engine: WorkerEngine, given: Partial<WorkerRuntimeOptions> = {}): Promise<never> {
  let options: WorkerRuntimeOptions;
  let runtime: WorkerRuntime;
  try {
    options = resolveWorkerOptions({ ...given, workerType: engine.workerType });
    runtime = new WorkerRuntime(engine, options);
  } catch (err) {
    return fail(err);
  }
  const logger = options.log;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, "second signal; exiting now");
      process.exit(130);
    }
    void runtime.shutdown(`received ${signal}`);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("uncaughtException", (err) => {
    logger.fatal({ err }, "uncaught exception; exiting");
    process.exit(1);
  });
  process.on("unhandledRejection", (err) => {
    logger.fatal({ err }, "unhandled rejection; exiting");
    process.exit(1);
  });
  try {
    await runtime.start();
  } catch (err) {
    logger.error({ err }, "worker failed to start");
    return fail(err);
  }
  await runtime.done;
  // an engine that failed while serving (an adapter whose engine died): exit non-zero, so the hive restarts the pair
  process.exit(runtime.failure ? 1 : 0);
}

function fail(err: unknown): never {
  const message = err instanceof RbeeError || err instanceof Error ? err.message : String(err);
  process.stderr.write(`rbee worker: ${message}\n`);
  process.exit(1);
}
