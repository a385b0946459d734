import { isAbsolute } from "node:path";
import {
  ErrorEvent,
  HiveModel,
  HiveWorkerReport,
  InstalledWorkerType,
  type InstallWorkerPackageRequest,
  type ModelFormat,
  ModelInspection,
  type ModelPeer,
  parseJson,
  RbeeError,
  type SpawnWorkerRequest,
  safeParse,
} from "@rbee/contract";
import { requestJson, sendRequest, streamSse, toStatusError } from "@rbee/server-kit";
import { z } from "zod";
import type { HiveEntry } from "../registry/cluster-registry.js";

/** Download progress as a hive reports it. */
export interface ModelProgress {
  done: number;
  total: number | null;
  rate?: number;
  eta_seconds?: number | null;
}

export interface ProvisionCallbacks {
  narrate?: (message: string) => void;
  progress?: (p: ModelProgress) => void;
}

/**
 * `any_path: true` for a model named by its path when the request being served comes from the
 * cluster's administrator (`admin`: its RequestFacts, passed down): the hive then takes the file from
 * anywhere outside system directories. Sent only with a path, so that hives of an earlier version
 * see nothing new otherwise.
 */
function anyPath(ref: string, admin: boolean | undefined): { any_path?: true } {
  return admin === true && isAbsolute(ref.trim()) ? { any_path: true } : {};
}

/** What a hive answers a package change with: the version now installed, and its worker catalog. */
const PackageChangeSchema = z.looseObject({
  id: z.string(),
  version: z.string(),
  previous_version: z.string().optional(),
  unchanged: z.boolean().optional(),
  trust: z.string().optional(),
  worker_types: z.array(InstalledWorkerType),
});
export type PackageChange = z.infer<typeof PackageChangeSchema>;

/** Errors a hive reports in a model stream that are the request's fault, with their HTTP status. */
const CLIENT_ERRORS: Record<string, number> = {
  invalid_request: 400,
  model_path_not_allowed: 403,
  model_not_available: 409,
  package_verification_failed: 422,
  worker_type_builtin: 409,
  no_artifact_for_platform: 409,
  package_busy: 409,
};

/** The queen's calls to a hive's API, with the cluster token. */
export class HiveClient {
  constructor(private readonly token: string) {}

  /** Asks the hive to spawn a worker; resolves once it is Ready. Aborting the signal stops the spawn. */
  spawnWorker(
    hive: HiveEntry,
    body: SpawnWorkerRequest,
    signal?: AbortSignal,
    admin?: boolean,
  ): Promise<HiveWorkerReport> {
    return requestJson(`${hive.url}/v1/workers`, HiveWorkerReport, {
      body: { ...body, ...anyPath(body.model, admin) },
      token: this.token,
      signal,
      what: `hive ${hive.id}`,
    });
  }

  /** True when the hive answers GET /health within `timeoutMs` (its process is up and reachable). */
  async isReachable(hive: HiveEntry, timeoutMs: number): Promise<boolean> {
    try {
      const res = await sendRequest(`${hive.url}/health`, { method: "GET", timeoutMs, what: `hive ${hive.id}` });
      res.resume();
      return true;
    } catch {
      return false;
    }
  }

  async stopWorker(hive: HiveEntry, workerId: string): Promise<void> {
    const url = `${hive.url}/v1/workers/${encodeURIComponent(workerId)}`;
    const res = await sendRequest(url, { method: "DELETE", token: this.token, what: `hive ${hive.id}` });
    if ((res.statusCode ?? 500) >= 400 && res.statusCode !== 404)
      throw await toStatusError(res, url, `hive ${hive.id}`);
    res.resume();
  }

  /**
   * Asks the hive to find or fetch a model (a catalog id, a path on its machine, a Hugging Face
   * reference), relaying its narration and download progress. Aborting stops the download.
   * `peers` are hives that already hold the model (by catalog id): the hive fetches it from them
   * over the LAN before the internet.
   */
  async provisionModel(
    hive: HiveEntry,
    ref: string,
    callbacks: ProvisionCallbacks = {},
    signal?: AbortSignal,
    peers?: readonly ModelPeer[],
    format?: ModelFormat,
    admin?: boolean,
  ): Promise<HiveModel> {
    const body = {
      ref,
      ...(peers && peers.length > 0 ? { peers } : {}),
      ...anyPath(ref, admin),
      ...(format !== undefined ? { format } : {}),
    };
    const done = await this.#stream(hive, "/v1/models", body, callbacks, "model stream", signal);
    const model = safeParse(HiveModel, done.model, `model from hive ${hive.id}`);
    if (!model.ok) throw new RbeeError(model.error.message, { statusCode: 502, code: "bad_gateway" });
    return model.value;
  }

  /**
   * POSTs to one of the hive's streaming routes (narration, progress, then `done` or `error`),
   * relaying narration and progress; resolves the `done` event's data.
   */
  async #stream(
    hive: HiveEntry,
    path: string,
    body: object,
    callbacks: ProvisionCallbacks,
    what: string,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const who = `hive ${hive.id}`;
    for await (const e of streamSse(`${hive.url}${path}`, { body, token: this.token, signal, what: who })) {
      const parsed = parseJson(e.data);
      const data = (parsed.ok ? parsed.value : {}) as Record<string, unknown>;
      if (e.event === "narration" && typeof data.message === "string") callbacks.narrate?.(data.message);
      else if (e.event === "progress") callbacks.progress?.(data as unknown as ModelProgress);
      else if (e.event === "done") return data;
      else if (e.event === "error") {
        const err = safeParse(ErrorEvent, data, `error from ${who}`);
        const code = err.ok ? err.value.code : "hive_error";
        const status = /not_found$/.test(code)
          ? 404
          : code === "unauthorized"
            ? 401
            : code === "insufficient_disk"
              ? 507
              : (CLIENT_ERRORS[code] ?? 502);
        throw new RbeeError(`${who}: ${err.ok ? err.value.message : e.data}`, {
          statusCode: status,
          code,
          details: (data.details as Record<string, unknown> | undefined) ?? {},
        });
      }
    }
    throw new RbeeError(`${who} ended the ${what} without an answer`, { statusCode: 502, code: "bad_gateway" });
  }

  /** Asks the hive to install a worker package version, relaying its narration and download progress. */
  async installPackage(
    hive: HiveEntry,
    body: InstallWorkerPackageRequest,
    callbacks: ProvisionCallbacks = {},
    signal?: AbortSignal,
  ): Promise<PackageChange> {
    return (await this.#stream(
      hive,
      "/v1/worker-packages",
      body,
      callbacks,
      "install stream",
      signal,
    )) as PackageChange;
  }

  rollbackPackage(hive: HiveEntry, id: string): Promise<PackageChange> {
    return requestJson(`${hive.url}/v1/worker-packages/${encodeURIComponent(id)}/rollback`, PackageChangeSchema, {
      method: "POST",
      body: {},
      token: this.token,
      what: `hive ${hive.id}`,
    }) as Promise<PackageChange>;
  }

  uninstallPackage(hive: HiveEntry, id: string): Promise<PackageChange> {
    return requestJson(`${hive.url}/v1/worker-packages/${encodeURIComponent(id)}`, PackageChangeSchema, {
      method: "DELETE",
      token: this.token,
      what: `hive ${hive.id}`,
    }) as Promise<PackageChange>;
  }

  inspectModel(
    hive: HiveEntry,
    ref: string,
    ctxSize?: number,
    parallel?: number,
    signal?: AbortSignal,
    admin?: boolean,
  ): Promise<ModelInspection> {
    return requestJson(`${hive.url}/v1/models/inspect`, ModelInspection, {
      body: { ref, ctx_size: ctxSize, parallel, ...anyPath(ref, admin) },
      token: this.token,
      signal,
      what: `hive ${hive.id}`,
    });
  }

  removeModel(hive: HiveEntry, id: string): Promise<HiveModel> {
    return requestJson(`${hive.url}/v1/models/${encodeURIComponent(id)}`, HiveModel, {
      method: "DELETE",
      token: this.token,
      what: `hive ${hive.id}`,
    });
  }
}
