import { RbeeError } from "@rbee/contract";
import type { ClusterRegistry, HiveEntry } from "../registry/cluster-registry.js";

/**
 * Which hives can take work now: live, not stopping, reachable by URL (not the pseudo-hive of
 * hand-started workers). Those on the queen's own machine come first. It decides nothing else.
 */

/** Hives that can take work now, those on the queen's own machine first; none is an error unless `required` is false. */
export function liveHives(registry: ClusterRegistry, required = true): HiveEntry[] {
  const live = [...registry.hives.values()].filter((h) => registry.isUsable(h) && h.url !== "");
  if (live.length === 0 && required) {
    throw new RbeeError("no hive is connected to the queen; start one with `rbee hive start` (or `rbee up`)", {
      statusCode: 503,
      code: "no_hives",
      retryable: true,
      retryAfterSeconds: 5,
    });
  }
  const local = (h: HiveEntry) => (/\/\/(127\.|localhost|\[::1\])/.test(h.url) ? 0 : 1);
  return live.sort((a, b) => local(a) - local(b));
}

/** A hive a request pins (`hive`) that cannot take work now is a clear error, whatever else would fail later. */
export function requireLiveHive(registry: ClusterRegistry, id: string): void {
  if (liveHives(registry, false).some((h) => h.id === id)) return;
  const known = [...registry.hives.keys()].join(", ") || "none";
  const state = registry.hives.get(id)?.state;
  throw new RbeeError(`hive '${id}' is not connected${state ? ` (it is ${state})` : ""}; hives: ${known}`, {
    statusCode: 400,
    code: "hive_not_found",
    param: "hive",
  });
}
