import { DEFAULT_HEARTBEAT_INTERVAL_MS, type Device } from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import type { WorkerRuntimeOptions } from "./worker-runtime.js";

/** What every `rbee worker serve <type>` takes besides its engine's own options. */
export interface ServeFlags {
  host: string;
  port: number;
  maxQueue: number;
  heartbeatUrl?: string | undefined;
  heartbeatIntervalMs?: number | undefined;
  orphanTimeoutMs: number;
  shutdownGraceMs: number;
  clusterToken?: string | undefined;
}

/** The runtime's options for a worker started from the serve flags, once its id, model id and device are known. */
export function runtimeOptionsFromFlags(
  o: ServeFlags,
  known: { workerId: string; modelId: string; device: Device; log: Logger },
): WorkerRuntimeOptions {
  return {
    ...known,
    host: o.host,
    port: o.port,
    maxQueue: o.maxQueue,
    heartbeatUrl: o.heartbeatUrl,
    heartbeatIntervalMs: o.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
    orphanTimeoutMs: o.orphanTimeoutMs,
    clusterToken: o.clusterToken,
    shutdownGraceMs: o.shutdownGraceMs,
  };
}
