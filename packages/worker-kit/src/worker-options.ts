import { randomBytes } from "node:crypto";
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_PORTS } from "@rbee/contract";
import { createLogger, envInt, envString, loadServerTls, tlsFilesFrom } from "@rbee/server-kit";
import { detectCpu } from "./devices/index.js";
import type { WorkerRuntimeOptions } from "./worker-runtime.js";

/**
 * Fills in what a worker was not told, from the environment a hive sets when it spawns one
 * (RBEE_WORKER_PORT, RBEE_WORKER_HOST, RBEE_HEARTBEAT_URL, RBEE_HEARTBEAT_INTERVAL_MS,
 * RBEE_ORPHAN_TIMEOUT_MS, RBEE_SHUTDOWN_GRACE_MS, RBEE_CLUSTER_TOKEN, RBEE_WORKER_ID, RBEE_MODEL_ID,
 * RBEE_MAX_QUEUE, and RBEE_TLS_CERT/RBEE_TLS_KEY, the hive's own certificate, to serve HTTPS: see
 * workerLaunchEnv in @rbee/contract) and the kit's defaults: the CPU device, a queue of 64,
 * heartbeats every 5 s, orphan timeout 60 s, 30 s to drain on shutdown.
 */
export function resolveWorkerOptions(
  given: Partial<WorkerRuntimeOptions> & { workerType?: string },
): WorkerRuntimeOptions {
  const workerId =
    given.workerId ??
    envString("RBEE_WORKER_ID") ??
    `${given.workerType ?? "worker"}-${randomBytes(4).toString("hex")}`;
  return {
    workerId,
    modelId: given.modelId ?? envString("RBEE_MODEL_ID") ?? "",
    host: given.host ?? envString("RBEE_WORKER_HOST", "127.0.0.1"),
    port: given.port ?? envInt("RBEE_WORKER_PORT", DEFAULT_PORTS.workerBase, 0),
    device: given.device ?? detectCpu(),
    maxQueue: given.maxQueue ?? envInt("RBEE_MAX_QUEUE", 64, 0),
    heartbeatUrl: given.heartbeatUrl ?? envString("RBEE_HEARTBEAT_URL"),
    heartbeatIntervalMs:
      given.heartbeatIntervalMs ?? envInt("RBEE_HEARTBEAT_INTERVAL_MS", DEFAULT_HEARTBEAT_INTERVAL_MS, 10),
    orphanTimeoutMs: given.orphanTimeoutMs ?? envInt("RBEE_ORPHAN_TIMEOUT_MS", 60_000, 0),
    clusterToken: given.clusterToken ?? envString("RBEE_CLUSTER_TOKEN"),
    tls: "tls" in given ? given.tls : loadTls(),
    shutdownGraceMs: given.shutdownGraceMs ?? envInt("RBEE_SHUTDOWN_GRACE_MS", 30_000, 0),
    log: given.log ?? createLogger({ service: "worker", bindings: { worker_id: workerId } }),
  };
}

function loadTls(): WorkerRuntimeOptions["tls"] {
  const files = tlsFilesFrom();
  return files ? loadServerTls(files) : undefined;
}
