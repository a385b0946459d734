import { type Hive, startHive } from "./hive.js";
import type { HiveOptions } from "./hive-options.js";

/**
 * The main of a foreground hive (`rbee hive start --foreground`): starts it, turns SIGTERM, SIGINT
 * and SIGHUP into a graceful stop of every worker and exit 0 (a second signal exits at once, 130),
 * and exits 1 with one clear line on stderr when the hive cannot start.
 */
export async function runHive(options: HiveOptions = {}): Promise<never> {
  let hive: Hive;
  try {
    hive = await startHive(options);
  } catch (err) {
    process.stderr.write(`rbee hive: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  const log = hive.log;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, "second signal; exiting now (workers stop by the orphan rule)");
      process.exit(130);
    }
    log.info({ signal }, "signal received; stopping");
    hive.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("SIGHUP", onSignal);
  process.on("uncaughtException", (err) => {
    log.fatal({ err }, "uncaught exception; exiting (workers stop by the orphan rule)");
    process.exit(1);
  });
  process.on("unhandledRejection", (err) => {
    log.fatal({ err }, "unhandled rejection; exiting (workers stop by the orphan rule)");
    process.exit(1);
  });
  return new Promise<never>(() => {});
}
