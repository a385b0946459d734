import { type JobOperation, keepAliveMs, NotFoundError } from "@rbee/contract";
import type { ClusterRegistry } from "../registry/cluster-registry.js";
import type { InferenceRouter } from "../scheduler/inference-router.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import type { JobContext, JobRunner } from "./job-store.js";

export interface JobDeps {
  router: InferenceRouter;
  scheduler: Scheduler;
  registry: ClusterRegistry;
}

/** What each job operation does, in terms of the scheduler and the router. */
export function jobRunner(op: JobOperation, deps: JobDeps): JobRunner {
  switch (op.type) {
    case "infer":
      return async (ctx: JobContext) => {
        const { type: _type, model, keep_alive, ...request } = op;
        let index = 0;
        const t0 = performance.now();
        const outcome = await deps.router.infer(model, request, {
          signal: ctx.signal,
          keepAliveMs: keep_alive === undefined ? undefined : keepAliveMs(keep_alive),
          narrate: ctx.narrate,
          onToken: (text) => ctx.token(text, index++),
        });
        return {
          ...outcome.response,
          model: outcome.model,
          worker_id: outcome.workerId,
          duration_ms: Math.round(performance.now() - t0),
        };
      };
    case "spawn_worker":
      return async (ctx: JobContext) => {
        const worker = await deps.scheduler.spawn(op.model, {
          hive: op.hive,
          device: op.device,
          ctxSize: op.ctx_size,
          parallel: op.parallel,
          threads: op.threads,
          // a worker spawned by hand stays until it is stopped, unless told otherwise
          keepAliveMs: op.keep_alive === undefined ? Number.POSITIVE_INFINITY : keepAliveMs(op.keep_alive),
          signal: ctx.signal,
          narrate: ctx.narrate,
        });
        return { worker: deps.registry.toClusterWorker(worker) };
      };
    case "stop_worker":
      return async (ctx: JobContext) => {
        const worker = deps.registry.workers.get(op.worker_id);
        if (!worker)
          throw new NotFoundError(`no worker '${op.worker_id}'; list them with \`rbee worker ls\``, "worker_not_found");
        ctx.narrate("queen", `stopping worker ${worker.id} on hive ${worker.hiveId}`);
        await deps.scheduler.stopWorker(worker, "stopped by request");
        return { worker_id: worker.id };
      };
  }
}
