import {
  CatalogWorkerDetail,
  type InstalledPackageInfo,
  type InstalledWorkerType,
  type JobOperation,
  RbeeError,
} from "@rbee/contract";
import { requestJson } from "@rbee/server-kit";
import { compareVersions, newestWithinMajor } from "@rbee/worker-package";
import type { HiveEntry, WorkerEntry } from "../registry/cluster-registry.js";
import { type JobDeps, targetHives } from "./job-runners.js";
import type { JobContext } from "./job-store.js";

type InstallOp = Extract<JobOperation, { type: "install_worker_package" }>;
type UpdateOp = Extract<JobOperation, { type: "update_worker_package" }>;
type UninstallOp = Extract<JobOperation, { type: "uninstall_worker_package" }>;

export interface PackageJobDeps extends JobDeps {
  /** The catalog servers an install looks in when it names none. */
  catalogUrls: readonly string[];
}

/** How long a readiness check of an updated package may take on one hive. */
const UPDATE_READY_TIMEOUT_MS = 60_000;

/** The package's page on the first catalog (of `catalogs`) that has it. */
async function findInCatalogs(
  id: string,
  catalogs: readonly string[],
  signal: AbortSignal,
): Promise<{ catalog: string; detail: CatalogWorkerDetail }> {
  const tried: string[] = [];
  for (const catalog of catalogs) {
    try {
      const detail = await requestJson(`${catalog}/workers/${encodeURIComponent(id)}`, CatalogWorkerDetail, {
        signal,
        what: `catalog ${catalog}`,
      });
      return { catalog, detail };
    } catch (err) {
      tried.push(`${catalog}: ${(err as Error).message}`);
    }
  }
  throw new RbeeError(
    `no catalog has worker package '${id}' (${tried.join("; ")}); list them with \`rbee worker available\``,
    {
      statusCode: 404,
      code: "worker_not_found",
      param: "id",
    },
  );
}

/** The hive's install request for a version of a catalog's package. */
function installRequest(
  catalog: string,
  detail: CatalogWorkerDetail,
  version: string,
  o: { allow_unsigned?: boolean; auto_update?: boolean },
) {
  const v = detail.versions.find((x) => x.version === version);
  if (v === undefined) {
    throw new RbeeError(
      `${detail.id} has no version ${version} in ${catalog}; it has ${detail.versions.map((x) => x.version).join(", ")}`,
      { statusCode: 404, code: "version_not_found", param: "version" },
    );
  }
  return {
    id: detail.id,
    version,
    artifacts: v.artifacts.map((a) => ({
      ...a,
      url: `${catalog}/workers/${encodeURIComponent(detail.id)}/download?version=${encodeURIComponent(version)}&platform=${encodeURIComponent(a.platform)}`,
    })),
    allow_unsigned: o.allow_unsigned ?? false,
    auto_update: o.auto_update ?? false,
  };
}

/** Runs `fn` on every hive at once; fails (after all are done) with the first failure, naming its hive. */
async function onEveryHive<T>(
  hives: HiveEntry[],
  fn: (h: HiveEntry) => Promise<T>,
): Promise<Array<T & { hive_id: string }>> {
  const settled = await Promise.allSettled(hives.map(async (h) => ({ ...(await fn(h)), hive_id: h.id })));
  const failed = settled.find((s) => s.status === "rejected");
  if (failed !== undefined) {
    const err = failed.reason as Error;
    const done = settled.filter((s) => s.status === "fulfilled").length;
    if (done > 0 && err instanceof RbeeError) {
      throw new RbeeError(`${err.message} (done on ${done} of ${hives.length} hives)`, {
        statusCode: err.statusCode,
        code: err.code,
        details: err.details,
      });
    }
    throw err;
  }
  return settled.map((s) => (s as PromiseFulfilledResult<T & { hive_id: string }>).value);
}

/** `install_worker_package`: the catalog's version of a package onto every (or one) hive. */
export async function installPackageJob(op: InstallOp, deps: PackageJobDeps, ctx: JobContext) {
  const { catalog, detail } = await findInCatalogs(op.id, op.catalogs ?? deps.catalogUrls, ctx.signal);
  const version = op.version ?? detail.latest_version;
  const body = installRequest(catalog, detail, version, op);
  const hives = targetHives(deps, op.hive);
  ctx.narrate("queen", `installing ${op.id}@${version} from ${catalog} on ${hives.map((h) => h.id).join(", ")}`);
  const results = await onEveryHive(hives, async (hive) => {
    const change = await deps.hives.installPackage(
      hive,
      body,
      {
        narrate: (m) => ctx.narrate(`hive ${hive.id}`, m),
        progress: (p) => ctx.progress(p.done, p.total, "bytes", `download ${hive.id}`, p.rate),
      },
      ctx.signal,
    );
    deps.registry.setWorkerTypes(hive.id, change.worker_types);
    const { worker_types: _, ...rest } = change;
    return rest;
  });
  return { id: op.id, version, catalog, hives: results };
}

/** `uninstall_worker_package`: removes a package from every hive that has it (or one). */
export async function uninstallPackageJob(op: UninstallOp, deps: JobDeps, ctx: JobContext) {
  const hives = targetHives(deps, op.hive).filter((h) => packageOn(h, op.id) !== undefined);
  if (hives.length === 0) {
    throw new RbeeError(`no hive${op.hive ? ` named ${op.hive}` : ""} has worker package '${op.id}' installed`, {
      statusCode: 404,
      code: "package_not_installed",
    });
  }
  const results = await onEveryHive(hives, async (hive) => {
    const change = await deps.hives.uninstallPackage(hive, op.id);
    deps.registry.setWorkerTypes(hive.id, change.worker_types);
    ctx.narrate(`hive ${hive.id}`, `removed ${op.id}@${change.version}`);
    return { version: change.version };
  });
  return { id: op.id, hives: results };
}

/** The package a hive reports installed under an id. */
function packageOn(hive: HiveEntry, id: string): (InstalledPackageInfo & { entry: InstalledWorkerType }) | undefined {
  const entry = hive.workerTypes?.find((t) => t.id === id && t.package !== undefined);
  return entry === undefined ? undefined : { ...(entry.package as InstalledPackageInfo), entry };
}

/** The catalog server a package was installed from (its download URL's origin and path before /workers/). */
export function catalogOf(sourceUrl: string): string {
  return sourceUrl.replace(/\/workers\/[^/]+\/download.*$/, "");
}

/**
 * `update_worker_package`: each installed package (or one) to the newest version of its catalog
 * within its major. On each hive, the new version is installed beside the old one, then checked:
 * every running worker of the type gets a replacement on the new version (the same model and
 * device) before it is drained and stopped, or, with none running, a trial worker is started and
 * stopped. A replacement or trial that does not become ready rolls the hive back to the old
 * version, and the workers still running on it are left alone.
 */
export async function updatePackagesJob(op: UpdateOp, deps: JobDeps, ctx: JobContext) {
  const hives = targetHives(deps, op.hive);
  const updates: Array<{ hive_id: string; id: string; from: string; to?: string; outcome: string }> = [];
  const failures: string[] = [];
  for (const hive of hives) {
    const installed = (hive.workerTypes ?? [])
      .filter((t) => t.package !== undefined && (op.id === undefined || t.id === op.id))
      .map((t) => packageOn(hive, t.id) as InstalledPackageInfo & { entry: InstalledWorkerType });
    for (const pkg of installed) {
      const id = pkg.entry.id;
      const catalog = catalogOf(pkg.source_url);
      const { detail } = await findInCatalogs(id, [catalog], ctx.signal);
      const versions = detail.versions.map((v) => v.version);
      const target =
        op.major === true
          ? compareVersions(detail.latest_version, pkg.version) > 0
            ? detail.latest_version
            : undefined
          : newestWithinMajor(pkg.version, versions);
      if (target === undefined) {
        ctx.narrate(`hive ${hive.id}`, `${id}@${pkg.version} is up to date`);
        updates.push({ hive_id: hive.id, id, from: pkg.version, outcome: "up to date" });
        continue;
      }
      try {
        await updateOnHive(
          deps,
          ctx,
          hive,
          id,
          pkg,
          installRequest(catalog, detail, target, {
            allow_unsigned: pkg.trust === "allowed-unsigned",
            auto_update: pkg.auto_update,
          }),
        );
        updates.push({ hive_id: hive.id, id, from: pkg.version, to: target, outcome: "updated" });
      } catch (err) {
        const message = (err as Error).message;
        failures.push(`hive ${hive.id}: ${message}`);
        updates.push({ hive_id: hive.id, id, from: pkg.version, to: target, outcome: `failed: ${message}` });
      }
    }
  }
  if (op.id !== undefined && updates.length === 0) {
    throw new RbeeError(
      `no hive has worker package '${op.id}' installed; install it with \`rbee worker install ${op.id}\``,
      {
        statusCode: 404,
        code: "package_not_installed",
      },
    );
  }
  if (failures.length > 0) {
    throw new RbeeError(failures.join("; "), { statusCode: 502, code: "update_failed", details: { updates } });
  }
  return { updates };
}

async function updateOnHive(
  deps: JobDeps,
  ctx: JobContext,
  hive: HiveEntry,
  id: string,
  pkg: InstalledPackageInfo,
  body: ReturnType<typeof installRequest>,
): Promise<void> {
  const say = (m: string) => ctx.narrate(`hive ${hive.id}`, m);
  say(`updating ${id} from ${pkg.version} to ${body.version}`);
  const change = await deps.hives.installPackage(hive, body, { narrate: say }, ctx.signal);
  deps.registry.setWorkerTypes(hive.id, change.worker_types);
  const old = [...deps.registry.workers.values()].filter(
    (w) => w.hiveId === hive.id && w.report.worker_type === id && !w.stopping && w.report.status !== "Stopped",
  );
  const started: WorkerEntry[] = [];
  try {
    if (old.length === 0) {
      // nothing runs it here: a trial worker shows the new version starts
      const trial = await deps.hives.spawnWorker(
        hive,
        { worker_type: id, model: `${id}-update-check`, ready_timeout_ms: UPDATE_READY_TIMEOUT_MS },
        ctx.signal,
      );
      say(`${id}@${body.version} started and became ready (trial worker ${trial.worker_id}); stopping it`);
      await deps.hives.stopWorker(hive, trial.worker_id);
    }
    for (const w of old) {
      const report = await deps.hives.spawnWorker(
        hive,
        {
          worker_type: id,
          model: w.report.model,
          device: w.report.device,
          ready_timeout_ms: UPDATE_READY_TIMEOUT_MS,
          keep_alive_ms: Number.isFinite(w.keepAliveMs) ? w.keepAliveMs : null,
          // the same configuration, checked again against the new version's config_schema
          ...(w.report.config === undefined ? {} : { config: w.report.config }),
        },
        ctx.signal,
      );
      started.push(deps.registry.addSpawnedWorker(hive.id, report, w.keepAliveMs));
      say(`${report.worker_id} serves ${w.report.model} on ${id}@${body.version}`);
    }
  } catch (err) {
    const reason = (err as Error).message;
    say(`${id}@${body.version} failed its readiness check (${reason}); rolling back to ${pkg.version}`);
    for (const w of started) await deps.scheduler.stopWorker(w, "update rolled back").catch(() => undefined);
    const back = await deps.hives.rollbackPackage(hive, id);
    deps.registry.setWorkerTypes(hive.id, back.worker_types);
    throw new RbeeError(
      `update of ${id} to ${body.version} failed its readiness check and was rolled back to ${back.version}: ${reason}`,
      { statusCode: 502, code: "update_rolled_back" },
    );
  }
  for (const w of old) await deps.scheduler.drainWorker(w, `updated ${id} to ${body.version}`, ctx.signal, ctx.narrate);
  say(`${id} is at ${body.version}`);
}
