import { type JobOperation, keepAliveMs, ModelNotFoundError, NotFoundError, RbeeError } from "@rbee/contract";
import type { ClusterRegistry, HiveEntry } from "../registry/cluster-registry.js";
import type { HiveClient, ModelProgress } from "../scheduler/hive-client.js";
import type { InferenceRouter } from "../scheduler/inference-router.js";
import type { Scheduler } from "../scheduler/scheduler.js";
import type { JobContext, JobRunner } from "./job-store.js";
import { installPackageJob, type PackageJobDeps, uninstallPackageJob, updatePackagesJob } from "./package-jobs.js";

export interface JobDeps {
  router: InferenceRouter;
  scheduler: Scheduler;
  registry: ClusterRegistry;
  hives: HiveClient;
}

/** Download progress as job progress events (bytes). */
function progressOf(ctx: JobContext) {
  return (p: ModelProgress) => ctx.progress(p.done, p.total, "bytes", "download", p.rate);
}

/** The hives an operation may use: the one named, or every live one. */
export function targetHives(deps: JobDeps, hive: string | undefined): HiveEntry[] {
  const live = [...deps.registry.hives.values()].filter(
    (h) => deps.registry.isUsable(h) && h.url !== "" && (hive === undefined || h.id === hive),
  );
  if (live.length === 0) {
    throw new RbeeError(
      hive === undefined
        ? "no hive is connected to the queen; start one with `rbee hive start`"
        : `hive '${hive}' is not connected; see \`rbee status\``,
      { statusCode: hive === undefined ? 503 : 404, code: hive === undefined ? "no_hives" : "hive_not_found" },
    );
  }
  return live;
}

/** What each job operation does, in terms of the scheduler and the router. */
/**
 * The runner of a job. `admin`: the request that created it came from the cluster's administrator
 * (its RequestFacts): a model the job names by its path may be anywhere on a hive.
 */
export function jobRunner(op: JobOperation, deps: JobDeps & Partial<PackageJobDeps>, admin = false): JobRunner {
  switch (op.type) {
    case "infer":
      return async (ctx: JobContext) => {
        const { type: _type, model, keep_alive, worker_type, ...request } = op;
        let index = 0;
        const t0 = performance.now();
        const outcome = await deps.router.infer(model, request, {
          signal: ctx.signal,
          admin,
          keepAliveMs: keep_alive === undefined ? undefined : keepAliveMs(keep_alive),
          narrate: ctx.narrate,
          progress: progressOf(ctx),
          workerType: worker_type,
          onToken: (text) => {
            ctx.token(text, index++);
            return undefined;
          },
        });
        return {
          ...outcome.response,
          model: outcome.model,
          worker_id: outcome.workerId,
          duration_ms: Math.round(performance.now() - t0),
        };
      };
    case "image":
      return async (ctx: JobContext) => {
        const { type: _type, model, keep_alive, worker_type, ...request } = op;
        const t0 = performance.now();
        const n = request.n ?? 1;
        let stage: string | undefined;
        let steps: number | undefined;
        const res = await deps.router.images(model, request, {
          signal: ctx.signal,
          admin,
          keepAliveMs: keep_alive === undefined ? undefined : keepAliveMs(keep_alive),
          narrate: ctx.narrate,
          workerType: worker_type,
          onProgress: (p, workerId) => {
            const image = n > 1 ? ` ${(p.image ?? 0) + 1} of ${n}` : "";
            if (p.stage !== undefined && p.stage !== stage) {
              stage = p.stage;
              ctx.narrate(`worker ${workerId}`, `image${image}: ${p.stage}`);
            }
            // sampler steps over the whole request when the engine reports them, else a percentage
            if (p.step !== undefined && p.steps !== undefined) {
              steps = p.steps;
              ctx.progress((p.image ?? 0) * p.steps + p.step, n * p.steps, "steps", "generating");
            } else if (steps === undefined) ctx.progress(Math.round(p.fraction * 100), 100, "%", "generating");
          },
        });
        const { workerId, ...result } = res;
        return { ...result, worker_id: workerId, duration_ms: Math.round(performance.now() - t0) };
      };
    case "spawn_worker":
      return async (ctx: JobContext) => {
        const workers = await deps.scheduler.spawn(op.model, {
          hive: op.hive,
          devices: op.devices?.map(memberOf),
          device: op.device,
          ctxSize: op.ctx_size,
          parallel: op.parallel,
          threads: op.threads,
          // a worker spawned by hand stays until it is stopped, unless told otherwise
          keepAliveMs: op.keep_alive === undefined ? Number.POSITIVE_INFINITY : keepAliveMs(op.keep_alive),
          replicas: op.replicas,
          policy: op.policy,
          workerType: op.worker_type,
          config: op.config,
          signal: ctx.signal,
          admin,
          narrate: ctx.narrate,
          progress: progressOf(ctx),
        });
        const shown = workers.map((w) => deps.registry.toClusterWorker(w));
        return { worker: shown[0] ?? null, workers: shown };
      };
    case "stop_worker":
      return async (ctx: JobContext) => {
        const worker = deps.registry.workers.get(op.worker_id);
        if (!worker)
          throw new NotFoundError(`no worker '${op.worker_id}'; list them with \`rbee worker ls\``, "worker_not_found");
        if (op.drain) {
          await deps.scheduler.drainWorker(worker, "drained and stopped by request", ctx.signal, ctx.narrate);
          return { worker_id: worker.id };
        }
        ctx.narrate("queen", `stopping worker ${worker.id} on hive ${worker.hiveId}`);
        await deps.scheduler.stopWorker(worker, "stopped by request");
        return { worker_id: worker.id };
      };
    case "download_model":
      return async (ctx: JobContext) => {
        const resolved = await deps.scheduler.resolveModel(op.model, {
          signal: ctx.signal,
          admin,
          narrate: ctx.narrate,
          progress: progressOf(ctx),
          hive: op.hive,
        });
        const held = resolved.hiveModels[0];
        if (held) ctx.narrate("queen", `${resolved.model} is available on hive ${held.hive.id}`);
        return { model: held ? { ...held.model, hive_id: held.hive.id } : { id: resolved.model } };
      };
    case "model_info":
      return async (ctx: JobContext) => {
        const hive = targetHives(deps, op.hive)[0] as HiveEntry;
        return {
          hive_id: hive.id,
          ...(await deps.hives.inspectModel(hive, op.model, op.ctx_size, op.parallel, ctx.signal, admin)),
        };
      };
    case "remove_model":
      return async (ctx: JobContext) => {
        const removed: Array<{ hive_id: string; id: string }> = [];
        for (const hive of targetHives(deps, op.hive)) {
          const has = hive.models.find((m) => m.id === op.model.toLowerCase() || m.path === op.model);
          if (!has) continue;
          await deps.hives.removeModel(hive, has.id);
          deps.registry.forgetModel(hive.id, has.id);
          ctx.narrate(`hive ${hive.id}`, `removed ${has.id}`);
          removed.push({ hive_id: hive.id, id: has.id });
        }
        if (removed.length === 0)
          throw new ModelNotFoundError(op.model, "no hive has it in its catalog; see `rbee model ls`");
        return { removed };
      };
    case "install_worker_package":
      return (ctx: JobContext) => installPackageJob(op, { ...deps, catalogUrls: deps.catalogUrls ?? [] }, ctx);
    case "update_worker_package":
      return (ctx: JobContext) => updatePackagesJob(op, deps, ctx);
    case "uninstall_worker_package":
      return (ctx: JobContext) => uninstallPackageJob(op, deps, ctx);
  }
}

/** `hiveA:cuda:0` → hive `hiveA`, device `cuda:0`. */
function memberOf(name: string): { hive: string; device: string } {
  const at = name.indexOf(":");
  return { hive: name.slice(0, at), device: name.slice(at + 1) };
}
