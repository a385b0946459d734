import { NotFoundError, RbeeError } from "@rbee/contract";
import { type HttpContext, readBody, sendRequest, toStatusError } from "@rbee/server-kit";
import type { ClusterRegistry } from "../registry/cluster-registry.js";

/**
 * `GET /v1/workers/{id}/logs?tail=N`: the last lines of a worker's log, fetched from its hive with
 * the cluster token (which stays on the queen), for the dashboard and API-key holders.
 */
export async function sendWorkerLogs(ctx: HttpContext, registry: ClusterRegistry, clusterToken: string): Promise<void> {
  const id = ctx.params.id ?? "";
  const worker = registry.workers.get(id);
  if (!worker) throw new NotFoundError(`no worker '${id}'; list them with \`rbee worker ls\``, "worker_not_found");
  const hive = registry.hives.get(worker.hiveId);
  if (!hive || hive.url === "")
    throw new RbeeError(`worker ${id}'s hive ${worker.hiveId} is not connected`, {
      statusCode: 503,
      code: "hive_unavailable",
    });
  const tail = ctx.url.searchParams.get("tail");
  const url = `${hive.url}/v1/workers/${encodeURIComponent(id)}/logs${tail === null ? "" : `?tail=${encodeURIComponent(tail)}`}`;
  const res = await sendRequest(url, {
    method: "GET",
    token: clusterToken,
    timeoutMs: 10_000,
    signal: ctx.signal,
    what: `hive ${hive.id}`,
  });
  if ((res.statusCode ?? 500) >= 400) throw await toStatusError(res, url, `hive ${hive.id}`);
  ctx.sendText(200, await readBody(res));
}
