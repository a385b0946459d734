import { RbeeError } from "@rbee/contract";
import type { PlacementCandidate } from "./placement.js";
import { norm } from "./scheduler-types.js";

/** A model that failed to start on a hive is not started there for requests again before this, doubling up to a minute. */
const SPAWN_RETRY_MS = 2000;
const SPAWN_RETRY_MAX_MS = 60_000;

/**
 * The backoff of failed starts, per model and per hive: after a worker failed to start, requests do
 * not start the model on that hive again until its backoff ends; when every hive that could run
 * it is in backoff, requests get its last failure at once. It does not decide where a worker goes;
 * it only takes hives out of the choice.
 */
export class SpawnBackoff {
  /** Failed starts by "model\0hive": requests do not start the model there again until `until`. */
  readonly #failures = new Map<string, { err: unknown; failures: number; at: number; until: number }>();

  /** A worker of the model could not start on the hive. */
  failed(model: string, hiveId: string, err: unknown, now = Date.now()): void {
    const key = `${norm(model)}\0${hiveId}`;
    const failures = (this.#failures.get(key)?.failures ?? 0) + 1;
    const until = now + Math.min(SPAWN_RETRY_MAX_MS, SPAWN_RETRY_MS * 2 ** (failures - 1));
    this.#failures.set(key, { err, failures, at: now, until });
  }

  /** A worker of the model started on the hive: its backoff there is over. */
  succeeded(model: string, hiveId: string): void {
    this.#failures.delete(`${norm(model)}\0${hiveId}`);
  }

  /** True while the model is held back on the hive after a failed start. */
  holds(model: string, hiveId: string, now = Date.now()): boolean {
    return (this.#failures.get(`${norm(model)}\0${hiveId}`)?.until ?? 0) > now;
  }

  /**
   * Leaves out the hives where the model failed to start within its backoff. When that leaves none
   * of those that could run it, the last failure is thrown at once (with when it is tried again),
   * rather than loading a model that fails to load again for every request.
   */
  skipFailedHives(model: string, candidates: PlacementCandidate[]): void {
    const now = Date.now();
    let last: { err: unknown; at: number; until: number } | undefined;
    for (let i = candidates.length - 1; i >= 0; i--) {
      const failed = this.#failures.get(`${norm(model)}\0${(candidates[i] as PlacementCandidate).hive.id}`);
      if (failed === undefined || failed.until <= now) continue;
      candidates.splice(i, 1);
      if (last === undefined || failed.at > last.at) last = failed;
    }
    if (candidates.length > 0 || last === undefined) return;
    const inSeconds = Math.max(1, Math.ceil((last.until - now) / 1000));
    const message = `${last.err instanceof Error ? last.err.message : String(last.err)} (the last start of ${model} failed ${Math.round((now - last.at) / 1000)} s ago; it is tried again in ${inSeconds} s)`;
    const status = last.err instanceof RbeeError ? last.err.statusCode : 503;
    const code = last.err instanceof RbeeError ? last.err.code : "worker_start_failed";
    throw new RbeeError(message, { statusCode: status, code, retryAfterSeconds: inSeconds });
  }
}
