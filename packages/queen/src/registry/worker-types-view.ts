import type { ClusterWorkerTypes } from "@rbee/contract";
import { WORKER_TYPES } from "@rbee/worker-types";
import { type ClusterRegistry, DIRECT_HIVE_ID } from "./cluster-registry.js";

/**
 * `GET /v1/worker-types` on the queen: every hive's worker catalog as its last heartbeat carried it,
 * and per type the hives where it can run and those where it cannot (with why). Types a hive reports
 * that this queen's registry lacks (a newer hive) are listed too.
 */
export function clusterWorkerTypes(registry: ClusterRegistry, defaultType: string): ClusterWorkerTypes {
  const hives = [...registry.hives.values()]
    .filter((h) => h.id !== DIRECT_HIVE_ID)
    .map((h) => ({ hive_id: h.id, state: h.state, worker_types: h.workerTypes ?? [] }));
  const byId = new Map<string, ClusterWorkerTypes["types"][number]>();
  for (const t of Object.values(WORKER_TYPES)) {
    byId.set(t.id, {
      id: t.id,
      description: t.description,
      capabilities: [...t.capabilities],
      device_kinds: [...t.deviceKinds],
      available_on: [],
      missing_on: [],
    });
  }
  for (const h of hives) {
    for (const t of h.worker_types) {
      let entry = byId.get(t.id);
      if (entry === undefined) {
        entry = { ...t, available_on: [], missing_on: [] };
        byId.set(t.id, entry);
      }
      if (t.status === "Available" && h.state !== "lost") entry.available_on.push(h.hive_id);
      else
        entry.missing_on.push({ hive_id: h.hive_id, error: t.error ?? (h.state === "lost" ? "hive lost" : t.status) });
    }
  }
  return { default_type: defaultType, hives, types: [...byId.values()] };
}
