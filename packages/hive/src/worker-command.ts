import type { WorkerSpec } from "./managed-worker.js";

export interface WorkerCommandContext {
  /** The rbee CLI entry (bin/rbee.js). */
  rbeeBin: string;
  port: number;
  /** The address the worker listens on. */
  host: string;
  /** The hive's URL as the worker reaches it, for heartbeats. */
  heartbeatUrl: string;
  heartbeatIntervalMs: number;
  orphanTimeoutMs: number;
  shutdownGraceMs: number;
}

/** Seconds as the CLI's duration flags take them ("0.5", "60"). */
function seconds(ms: number): string {
  return String(Math.round(ms) / 1000);
}

/**
 * The arguments (after `node`) that start a worker:
 * `<rbee> worker serve <type> --model=<path> --model-id=<id> --worker-id=<id> --port=<port> ...`.
 * Values go in the `--flag=value` form, so that none is ever read as a flag.
 */
export function workerCommandArgs(spec: WorkerSpec, ctx: WorkerCommandContext): string[] {
  if (spec.modelPath === undefined) throw new Error(`worker '${spec.workerId}' has no model file to start with`);
  const args = [
    ctx.rbeeBin,
    "worker",
    "serve",
    spec.workerType,
    `--model=${spec.modelPath}`,
    `--model-id=${spec.modelId}`,
    `--worker-id=${spec.workerId}`,
    `--host=${ctx.host}`,
    `--port=${ctx.port}`,
    `--device=${spec.device}`,
    `--heartbeat-url=${ctx.heartbeatUrl}`,
    `--heartbeat-interval=${seconds(ctx.heartbeatIntervalMs)}`,
    `--orphan-timeout=${seconds(ctx.orphanTimeoutMs)}`,
    `--shutdown-grace=${seconds(ctx.shutdownGraceMs)}`,
  ];
  if (spec.ctxSize !== undefined) args.push(`--ctx-size=${spec.ctxSize}`);
  if (spec.parallel !== undefined) args.push(`--parallel=${spec.parallel}`);
  if (spec.threads !== undefined) args.push(`--threads=${spec.threads}`);
  if (spec.maxQueue !== undefined) args.push(`--max-queue=${spec.maxQueue}`);
  return args;
}
