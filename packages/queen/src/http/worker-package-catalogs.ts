import {
  type CatalogSourceStatus,
  CatalogWorkerDetail,
  CatalogWorkerList,
  type CatalogWorkerSummary,
  DeviceKind,
  type InstalledPackageInfo,
  type PackageInstallation,
  PackagePlatform,
  type QueenWorkerPackageDetail,
  type QueenWorkerPackageList,
  RbeeError,
  ValidationError,
  WorkerCategory,
  WorkerTypeId,
} from "@rbee/contract";
import { type HttpContext, HttpStatusError, requestJson } from "@rbee/server-kit";
import { compareVersions, newestWithinMajor } from "@rbee/worker-package";
import { z } from "zod";
import { catalogOf } from "../jobs/package-jobs.js";
import { type ClusterRegistry, DIRECT_HIVE_ID } from "../registry/cluster-registry.js";

/** How long the queen waits for a catalog server before it reports it unreachable. */
const CATALOG_TIMEOUT_MS = 5_000;
/** Pages of 100 the queen reads of one catalog for one listing (10,000 packages). */
const MAX_PAGES = 100;

/** The filters `GET /v1/worker-packages` takes, each passed on to the catalogs as they name it. */
const FILTERS = {
  category: { schema: WorkerCategory, catalogParam: "category" },
  platform: { schema: PackagePlatform, catalogParam: "platform" },
  device_kind: { schema: DeviceKind, catalogParam: "device_kind" },
  q: { schema: z.string().max(200, "must be at most 200 characters"), catalogParam: "q" },
} as const;

/** The filters of a listing, checked: an unknown parameter or a bad value is a 400 that says which. */
function parseFilters(params: URLSearchParams): URLSearchParams {
  const out = new URLSearchParams();
  for (const [name, raw] of params) {
    const filter = FILTERS[name as keyof typeof FILTERS];
    if (filter === undefined) {
      throw new ValidationError(
        `unknown parameter '${name}'; GET /v1/worker-packages takes ${Object.keys(FILTERS).join(", ")}`,
        name,
      );
    }
    const value = raw.trim();
    if (value === "") continue; // category= means every category
    const parsed = filter.schema.safeParse(value);
    if (!parsed.success) {
      const hint =
        name === "category"
          ? `one of ${WorkerCategory.options.join(", ")}`
          : name === "device_kind"
            ? `one of ${DeviceKind.options.join(", ")}`
            : (parsed.error.issues[0]?.message ?? "invalid");
      throw new ValidationError(`${name} '${value}' is not valid: ${hint}`, name);
    }
    out.set(filter.catalogParam, value);
  }
  return out;
}

/** An installation as a hive reports it, before its catalog is asked for an update. */
interface Installed {
  hive_id: string;
  hive_state: string;
  version: string;
  status: string;
  trust: "verified" | "allowed-unsigned";
  auto_update: boolean;
  catalog: string;
}

/** Why a catalog did not answer, in a line. */
function reasonOf(err: unknown): string {
  return (err as Error).message;
}

/**
 * The queen's view of its worker catalog servers (RBEE_CATALOG_URLS), for the dashboard: the
 * packages they offer, merged, each with the hives that have it installed and the update each could
 * take. The browser never talks to a catalog itself (no CORS, no second origin in the page's
 * Content-Security-Policy); a catalog that does not answer is named in the reply, and the others are
 * still listed.
 */
export class WorkerPackageCatalogs {
  readonly #registry: ClusterRegistry;
  readonly #catalogs: () => readonly string[];

  constructor(registry: ClusterRegistry, catalogs: () => readonly string[]) {
    this.#registry = registry;
    this.#catalogs = catalogs;
  }

  /** `GET /v1/worker-packages?category=&platform=&device_kind=&q=` */
  async list(ctx: HttpContext): Promise<void> {
    const filters = parseFilters(ctx.url.searchParams);
    const catalogs = this.#catalogs();
    const installs = this.#installations();
    const [listed, versions] = await Promise.all([
      Promise.all(catalogs.map((c) => this.#listCatalog(c, filters, ctx.signal))),
      this.#versionsOfInstalled(installs, ctx.signal),
    ]);
    const body: QueenWorkerPackageList = {
      packages: listed.flatMap((r, i) =>
        r.workers.map((w) => ({
          ...w,
          catalog: catalogs[i] as string,
          installed: this.#withUpdates(w.id, installs.get(w.id) ?? [], versions),
        })),
      ),
      catalogs: listed.map((r) => r.status),
    };
    ctx.send(200, body);
  }

  /** `GET /v1/worker-packages/{id}`: the first of the queen's catalogs that has it. */
  async detail(ctx: HttpContext): Promise<void> {
    const id = ctx.params.id ?? "";
    const idCheck = WorkerTypeId.safeParse(id);
    if (!idCheck.success) {
      throw new ValidationError(
        `'${id}' is not a worker package id: ${idCheck.error.issues[0]?.message ?? "invalid"}`,
        "id",
      );
    }
    if (ctx.url.searchParams.size > 0) {
      const [name] = [...ctx.url.searchParams.keys()];
      throw new ValidationError(`unknown parameter '${name}'; GET /v1/worker-packages/{id} takes none`, name ?? null);
    }
    const statuses: CatalogSourceStatus[] = [];
    const notFound: string[] = [];
    const unreachable: string[] = [];
    let found: { catalog: string; detail: CatalogWorkerDetail } | undefined;
    for (const catalog of this.#catalogs()) {
      try {
        const detail = await requestJson(`${catalog}/workers/${encodeURIComponent(id)}`, CatalogWorkerDetail, {
          signal: ctx.signal,
          timeoutMs: CATALOG_TIMEOUT_MS,
          what: `catalog ${catalog}`,
        });
        statuses.push({ url: catalog, ok: true });
        found = { catalog, detail };
        break;
      } catch (err) {
        if (err instanceof HttpStatusError && err.status === 404) {
          statuses.push({ url: catalog, ok: true });
          notFound.push(catalog);
        } else {
          statuses.push({ url: catalog, ok: false, error: reasonOf(err) });
          unreachable.push(`${catalog} (${reasonOf(err)})`);
        }
      }
    }
    if (found === undefined) {
      const catalogs = this.#catalogs();
      if (unreachable.length > 0) {
        // a 404 still (what the queen can see has no such package), naming what it could not see
        throw new RbeeError(
          `worker package '${id}' was not found in ${notFound.length > 0 ? notFound.join(", ") : "any catalog that answered"}, and ${unreachable.length === 1 ? "this catalog" : "these catalogs"} did not answer: ${unreachable.join("; ")}; it may be there: start it again, or list another with RBEE_CATALOG_URLS on the queen`,
          { statusCode: 404, code: "worker_not_found", param: "id", details: { catalogs: statuses } },
        );
      }
      throw new RbeeError(
        `no catalog of this queen has worker package '${id}' (asked ${catalogs.join(", ") || "none"}); list the packages with GET /v1/worker-packages, or add its catalog to RBEE_CATALOG_URLS on the queen`,
        { statusCode: 404, code: "worker_not_found", param: "id", details: { catalogs: statuses } },
      );
    }
    const installs = this.#installations().get(id) ?? [];
    const versions = await this.#versionsOfInstalled(
      new Map([[id, installs.filter((i) => i.catalog !== found.catalog)]]),
      ctx.signal,
    );
    versions.set(
      versionsKey(found.catalog, id),
      found.detail.versions.map((v) => v.version),
    );
    const body: QueenWorkerPackageDetail = {
      ...found.detail,
      catalog: found.catalog,
      installed: this.#withUpdates(id, installs, versions),
      catalogs: statuses,
    };
    ctx.send(200, body);
  }

  /** Every page of one catalog's listing; a catalog that fails is reported, not thrown. */
  async #listCatalog(
    catalog: string,
    filters: URLSearchParams,
    signal: AbortSignal,
  ): Promise<{ workers: CatalogWorkerSummary[]; status: CatalogSourceStatus }> {
    const workers: CatalogWorkerSummary[] = [];
    try {
      for (let page = 1; page <= MAX_PAGES; page++) {
        const q = new URLSearchParams(filters);
        q.set("page", String(page));
        q.set("per_page", "100");
        const list = await requestJson(`${catalog}/workers?${q}`, CatalogWorkerList, {
          signal,
          timeoutMs: CATALOG_TIMEOUT_MS,
          what: `catalog ${catalog}`,
        });
        workers.push(...list.workers);
        if (list.workers.length === 0 || page * list.per_page >= list.total) {
          return { workers, status: { url: catalog, ok: true, total: list.total } };
        }
      }
      return { workers, status: { url: catalog, ok: true, total: workers.length } };
    } catch (err) {
      return { workers: [], status: { url: catalog, ok: false, error: reasonOf(err) } };
    }
  }

  /** The packages the hives report installed, by id (without their updates yet). */
  #installations(): Map<string, Array<Installed>> {
    const byId = new Map<string, Array<Installed>>();
    for (const hive of this.#registry.hives.values()) {
      if (hive.id === DIRECT_HIVE_ID) continue;
      for (const t of hive.workerTypes ?? []) {
        if (t.package === undefined) continue;
        const p = t.package as InstalledPackageInfo;
        const list = byId.get(t.id) ?? [];
        list.push({
          hive_id: hive.id,
          hive_state: hive.state,
          version: p.version,
          status: t.status === "Available" ? "Available" : (t.error ?? t.status),
          trust: p.trust,
          auto_update: p.auto_update,
          catalog: catalogOf(p.source_url),
        });
        byId.set(t.id, list);
      }
    }
    return byId;
  }

  /** The versions each installed package's own catalog has (those that answered), by catalog and id. */
  async #versionsOfInstalled(
    installs: Map<string, Array<Installed>>,
    signal: AbortSignal,
  ): Promise<Map<string, string[]>> {
    const wanted = new Map<string, { catalog: string; id: string }>();
    for (const [id, list] of installs)
      for (const i of list) wanted.set(versionsKey(i.catalog, id), { catalog: i.catalog, id });
    const versions = new Map<string, string[]>();
    await Promise.all(
      [...wanted].map(async ([key, { catalog, id }]) => {
        try {
          const d = await requestJson(`${catalog}/workers/${encodeURIComponent(id)}`, CatalogWorkerDetail, {
            signal,
            timeoutMs: CATALOG_TIMEOUT_MS,
            what: `catalog ${catalog}`,
          });
          versions.set(
            key,
            d.versions.map((v) => v.version),
          );
        } catch {
          // its catalog is down or no longer has it: no update is known
        }
      }),
    );
    return versions;
  }

  /** Each installation with the update within its major that its catalog offers, if any. */
  #withUpdates(id: string, installs: Array<Installed>, versions: Map<string, string[]>): PackageInstallation[] {
    return installs.map((i) => {
      const known = versions.get(versionsKey(i.catalog, id));
      const newest = known === undefined ? undefined : newestWithinMajor(i.version, known);
      return {
        ...i,
        update_available: newest !== undefined && compareVersions(newest, i.version) > 0 ? newest : null,
      };
    });
  }
}

function versionsKey(catalog: string, id: string): string {
  return `${catalog}\n${id}`;
}
