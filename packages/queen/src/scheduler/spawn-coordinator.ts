import {
  type Device,
  InsufficientMemoryError,
  type ModelFacts,
  type PlacementPolicy,
  type WorkerTypeDescriptor,
} from "@rbee/contract";
import { type Logger, UnreachableError } from "@rbee/server-kit";
import type { ClusterRegistry, HiveEntry, WorkerEntry } from "../registry/cluster-registry.js";
import type { ClusterChanges } from "./cluster-changes.js";
import type { Eviction } from "./eviction.js";
import type { HiveClient } from "./hive-client.js";
import { liveHives } from "./live-hives.js";
import type { PendingSpawn, PendingSpawns } from "./pending-spawns.js";
import {
  choosePlacement,
  estimateWorkerMemory,
  formatBytes,
  hiveRunsAnywhere,
  type Placement,
  type PlacementCandidate,
} from "./placement.js";
import { type SpawnOptions, silent } from "./scheduler-types.js";
import type { SpawnBackoff } from "./spawn-backoff.js";
import type { WorkerTypeChoice } from "./worker-type-choice.js";

export type LaunchOptions = SpawnOptions & {
  /** Started for waiting requests: may make room by eviction, and is skipped where the model is in backoff. */
  forRequests?: boolean;
  /** Started in place of a lost hive's worker or for a minimum (given up when that hive comes back). */
  replacement?: boolean;
};

/**
 * Starting one worker: chooses its hive and device (placement.ts; eviction.ts when a request's
 * model fits nowhere), has a hive without the file fetch it from one that has it, asks the hive to
 * spawn, and registers the worker. The spawn is kept under a key while it runs (pending-spawns.ts)
 * so that requests for the model wait on it rather than start another. It does not decide whether a
 * worker is needed (request-queue.ts, replica-keeper.ts, failover.ts decide that).
 */
export class SpawnCoordinator {
  constructor(
    private readonly registry: ClusterRegistry,
    private readonly hives: HiveClient,
    private readonly types: WorkerTypeChoice,
    private readonly pending: PendingSpawns,
    private readonly backoff: SpawnBackoff,
    private readonly eviction: Eviction,
    private readonly changes: ClusterChanges,
    private readonly o: { policy: PlacementPolicy; log: Logger },
  ) {}

  /**
   * Places and starts one spawn under `key`; requests for the model wait on its promise. One
   * `forRequests` (not by hand, for a minimum or a lost hive) may stop other models' workers to make
   * room, and is given up when every request waiting for it goes away.
   * @throws at once when it cannot be placed (placement's errors, or the model's backoff).
   */
  launch(key: string, model: string, o: LaunchOptions): PendingSpawn {
    const type = this.types.forModel(model, o.workerType, o.capability);
    const { candidates, facts } = this.#candidates(model, o, type);
    if (o.forRequests) this.backoff.skipFailedHives(model, candidates);
    const need = (device: Device) =>
      estimateWorkerMemory(type, facts, device.kind, { contextSize: o.ctxSize, parallel: o.parallel });
    const placementOptions = {
      policy: o.policy ?? this.o.policy,
      device: o.device,
      workerType: type,
      need,
      elsewhere: (t: WorkerTypeDescriptor) =>
        o.hive === undefined
          ? []
          : liveHives(this.registry, false)
              .filter((h) => h.id !== o.hive && hiveRunsAnywhere(h, t))
              .map((h) => h.id),
    };
    let placement: Placement;
    let victims: WorkerEntry[] = [];
    try {
      placement = choosePlacement(candidates, this.pending.load(model), placementOptions);
    } catch (err) {
      const room =
        err instanceof InsufficientMemoryError && o.forRequests
          ? this.eviction.findRoom(model, candidates, o, type, need)
          : undefined;
      if (!room) throw err;
      placement = room.placement;
      victims = room.victims;
    }
    const abort = new AbortController();
    const signal = o.signal ? AbortSignal.any([o.signal, abort.signal]) : abort.signal;
    const entry: PendingSpawn = {
      promise: undefined as unknown as Promise<WorkerEntry>,
      waiters: 0,
      abort,
      forRequests: o.forRequests === true,
      model,
      hiveId: placement.hive.id,
      deviceId: placement.device.id,
      needBytes: placement.needBytes,
      workerType: type,
    };
    this.pending.add(key, entry);
    entry.promise = (async () => {
      if (victims.length > 0) await this.eviction.evict(victims, model, placement, o.narrate ?? silent, signal);
      return this.#spawn(model, placement, o, signal);
    })().finally(() => {
      this.pending.remove(key, entry);
      this.changes.changed();
    });
    entry.promise.catch(() => {}); // the waiters see the error; without waiters it is only logged
    if (o.replacement) this.pending.markReplacement(entry);
    return entry;
  }

  /**
   * The live hives a worker for `model` can go to and whether they hold it, with what placement
   * reads of the model (its size and GGUF header) for the type's estimate.
   */
  #candidates(
    model: string,
    o: SpawnOptions,
    type: WorkerTypeDescriptor,
  ): { candidates: PlacementCandidate[]; facts: ModelFacts } {
    const live = liveHives(this.registry, false).filter((hive) => o.hive === undefined || hive.id === o.hive);
    // a type that loads nothing can go to any hive
    if (type.artifact === "none")
      return { candidates: live.map((hive) => ({ hive, hasModel: true })), facts: { size_bytes: 0 } };
    const holders = this.registry.findModel(model);
    const info = holders[0]?.model;
    if (info === undefined) return { candidates: [], facts: { size_bytes: 0 } };
    // a Hugging Face repo is not shared on the LAN (yet): only hives that hold it can start a worker for it
    if (info.format === "hf-repo")
      return {
        candidates: live
          .filter((hive) => holders.some((h) => h.hive.id === hive.id))
          .map((hive) => ({ hive, hasModel: true })),
        facts: info,
      };
    // hives without the file fetch it from a holder on the LAN
    return {
      candidates: live.map((hive) => ({ hive, hasModel: holders.some((h) => h.hive.id === hive.id) })),
      facts: info,
    };
  }

  async #spawn(model: string, placement: Placement, o: SpawnOptions, signal: AbortSignal): Promise<WorkerEntry> {
    const narrate = o.narrate ?? silent;
    const { hive, device, needBytes, workerType } = placement;
    if (!placement.hasModel) await this.#share(model, hive, o, signal);
    narrate(
      "queen",
      `spawning ${workerType} worker for ${model} on hive ${hive.id} (${device.id}; needs about ${formatBytes(needBytes)}, ${formatBytes(device.memory_free)} free)`,
    );
    const t0 = performance.now();
    let report: Awaited<ReturnType<HiveClient["spawnWorker"]>>;
    try {
      report = await this.hives.spawnWorker(
        hive,
        {
          worker_type: workerType,
          model,
          device: device.id,
          ctx_size: o.ctxSize,
          parallel: o.parallel,
          threads: o.threads,
          keep_alive_ms: Number.isFinite(o.keepAliveMs) ? o.keepAliveMs : null,
          memory_bytes: needBytes,
          ...(o.config === undefined ? {} : { config: o.config }),
        },
        signal,
        o.admin,
      );
    } catch (err) {
      // a worker that could not start (not a cancelled spawn, not a hive out of reach: failover handles those)
      if (!signal.aborted && !(err instanceof UnreachableError)) this.backoff.failed(model, hive.id, err);
      throw err;
    }
    this.backoff.succeeded(model, hive.id);
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    narrate(`hive ${hive.id}`, `worker ${report.worker_id} ready: model loaded in ${seconds} s`);
    this.o.log.info(
      { worker_id: report.worker_id, hive_id: hive.id, model, device: device.id, seconds: Number(seconds) },
      "worker spawned",
    );
    return this.registry.addSpawnedWorker(hive.id, report, o.keepAliveMs, undefined, needBytes);
  }

  /** Has a hive fetch a model from the hives that hold it (on the LAN) before a worker starts there. */
  async #share(model: string, hive: HiveEntry, o: SpawnOptions, signal: AbortSignal): Promise<void> {
    const narrate = o.narrate ?? silent;
    const peers = this.registry
      .findModel(model)
      .filter((h) => h.hive.id !== hive.id)
      .map((h) => ({ hive_id: h.hive.id, url: h.hive.url }));
    narrate("queen", `hive ${hive.id} fetches ${model} from hive ${peers.map((p) => p.hive_id).join(", ")} on the LAN`);
    const fetched = await this.hives.provisionModel(
      hive,
      model,
      { narrate: (m) => narrate(`hive ${hive.id}`, m), progress: o.progress },
      signal,
      peers,
      undefined,
      o.admin,
    );
    this.registry.modelProvisioned(hive.id, fetched);
  }
}
