import { HiveModel, HiveWorkerReport, type SpawnWorkerRequest } from "@rbee/contract";
import { requestJson, sendRequest, toStatusError } from "@rbee/server-kit";
import type { HiveEntry } from "../registry/cluster-registry.js";

/** The queen's calls to a hive's API, with the cluster token. */
export class HiveClient {
  constructor(private readonly token: string) {}

  /** Asks the hive to spawn a worker; resolves once it is Ready. Aborting the signal stops the spawn. */
  spawnWorker(hive: HiveEntry, body: SpawnWorkerRequest, signal?: AbortSignal): Promise<HiveWorkerReport> {
    return requestJson(`${hive.url}/v1/workers`, HiveWorkerReport, {
      body,
      token: this.token,
      signal,
      what: `hive ${hive.id}`,
    });
  }

  async stopWorker(hive: HiveEntry, workerId: string): Promise<void> {
    const url = `${hive.url}/v1/workers/${encodeURIComponent(workerId)}`;
    const res = await sendRequest(url, { method: "DELETE", token: this.token, what: `hive ${hive.id}` });
    if ((res.statusCode ?? 500) >= 400 && res.statusCode !== 404)
      throw await toStatusError(res, url, `hive ${hive.id}`);
    res.resume();
  }

  /** Asks the hive to find a model (an absolute path of a file on its machine, or a catalog id). */
  resolveModel(hive: HiveEntry, ref: string, signal?: AbortSignal): Promise<HiveModel> {
    return requestJson(`${hive.url}/v1/models`, HiveModel, {
      body: { ref },
      token: this.token,
      signal,
      what: `hive ${hive.id}`,
    });
  }
}
