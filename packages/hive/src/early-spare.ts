import { cachePaths, loadOrCreateClusterToken } from "@rbee/server-kit/client";
import { defaultRbeeBin } from "./default-rbee-bin.js";
import { type StartedSpare, spareLogFile, spawnSpare } from "./spare-worker.js";

/**
 * The hive's first spare worker process, started by `rbee hive start` before it loads the hive
 * (`@rbee/hive/early-spare` imports none of it): the spare's own start (Node, node-llama-cpp,
 * llama.cpp's binary test, ~1.5-3 s) is the longest path of a cold `rbee infer`, and the hive's
 * imports took ~0.7 s of it. The hive takes it as its first spare (HiveOptions.firstSpare).
 * Undefined where the hive would start none (RBEE_SPARE_WORKER=0) or would give its workers an
 * environment of its own (TLS: they serve with its certificate); the hive starts its own then.
 */
export function startEarlySpare(o: {
  cacheDir: string;
  configDir: string;
  /** The hive serves HTTPS (--tls-cert and --tls-key). */
  tls: boolean;
  env?: NodeJS.ProcessEnv;
}): StartedSpare | undefined {
  const env = o.env ?? process.env;
  if (/^(0|false|no)$/i.test(env.RBEE_SPARE_WORKER ?? "")) return undefined;
  if (o.tls || env.RBEE_TLS_CERT || env.RBEE_TLS_KEY) return undefined;
  // the workers' environment as the hive makes it without TLS (hive.ts, workerEnv), with the token
  const token = loadOrCreateClusterToken(o.configDir, env);
  const rbeeBin = env.RBEE_BIN || defaultRbeeBin();
  const logFile = spareLogFile(cachePaths(o.cacheDir).logs, 1);
  const child = spawnSpare({ node: process.execPath, rbeeBin, env: { ...env, RBEE_CLUSTER_TOKEN: token }, logFile });
  return { child, logFile };
}
