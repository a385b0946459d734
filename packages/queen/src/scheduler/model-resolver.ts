import { isAbsolute } from "node:path";
import {
  type HiveModel,
  type ModelFacts,
  ModelNotFoundError,
  type PlacementPolicy,
  type WorkerTypeDescriptor,
} from "@rbee/contract";
import { findWorkerType } from "@rbee/worker-types";
import type { ClusterRegistry, HiveEntry } from "../registry/cluster-registry.js";
import type { HiveClient } from "./hive-client.js";
import { liveHives, requireLiveHive } from "./live-hives.js";
import type { PendingSpawns } from "./pending-spawns.js";
import {
  choosePlacement,
  estimateWorkerMemory,
  formatBytes,
  hiveRunsAnywhere,
  typeNotInstalledError,
} from "./placement.js";
import { norm, type ResolveOptions, silent } from "./scheduler-types.js";
import type { WorkerTypeChoice } from "./worker-type-choice.js";

export type Resolved = { model: string; hiveModels: Array<{ hive: HiveEntry; model: HiveModel }> };

/**
 * Resolving models: turns what a client asked for into a model id the hives know, and has a hive
 * fetch it when none holds it (choosing the hive where it fits, by the GGUF header, before any
 * byte is downloaded). It does not start workers (spawn-coordinator.ts) and does not choose among
 * running ones (leases.ts).
 */
export class ModelResolver {
  readonly #startedAt = Date.now();

  constructor(
    private readonly registry: ClusterRegistry,
    private readonly hives: HiveClient,
    private readonly types: WorkerTypeChoice,
    private readonly pending: PendingSpawns,
    private readonly o: { settleMs: number; policy: PlacementPolicy },
  ) {}

  /**
   * Turns what a client asked for into a model id the hives know: an id (any case) of a running
   * worker or of a hive's catalog; an absolute path of a GGUF file, which the hive that has the file
   * adds to its catalog; or a reference a hive can fetch (owner/repo[:file], hf://…, a short name):
   * then the fit is planned from the GGUF header before a byte of the model is fetched, and the
   * hive with a device that fits it downloads it.
   */
  async resolve(ref: string, o: ResolveOptions = {}): Promise<Resolved> {
    const onHive = (h: { hive: HiveEntry }) => o.hive === undefined || h.hive.id === o.hive;
    const known = () => {
      const found = this.registry.findModel(ref).find(onHive);
      if (found) return { model: found.model.id, hiveModels: this.registry.findModel(found.model.id) };
      const running = [...this.registry.workers.values()].find((w) => norm(w.report.model) === norm(ref));
      if (running && o.hive === undefined) return { model: running.report.model, hiveModels: [] };
      return undefined;
    };
    // a queen just started may not have heard the hives yet: wait for one (the one pinned), not longer
    const heard = () => {
      const live = liveHives(this.registry, false);
      return live.length > 0 && (o.hive === undefined || live.some((h) => h.id === o.hive));
    };
    if (!known() && !heard()) await this.#firstHeartbeatRound(() => known() !== undefined || heard(), o.signal);
    const now = known();
    if (now) return now;
    if (o.hive !== undefined) requireLiveHive(this.registry, o.hive);
    if (isAbsolute(ref))
      return this.#registerPath(
        ref,
        liveHives(this.registry).filter((hive) => onHive({ hive })),
        o,
      );
    const live = liveHives(this.registry, false);
    if (live.length === 0) {
      throw new ModelNotFoundError(
        ref,
        "no worker serves it and no hive is connected that could fetch it; start one with `rbee hive start`",
      );
    }
    const type = o.workerType === undefined ? undefined : findWorkerType(o.workerType);
    if (type?.artifact === "hf-repo") return this.#fetchRepo(ref, live, o, type);
    return this.#fetch(ref, live, o);
  }

  /**
   * A queen that has just started has not heard from the hives yet (they retry within an interval):
   * a request then would be told that no hive could serve or fetch its model, although the hive
   * that holds it is about to report. Until the first round of heartbeats is over (settleMs), wait
   * for `ready` (the model known, or a hive heard from) rather than answer that.
   */
  async #firstHeartbeatRound(ready: () => boolean, signal?: AbortSignal): Promise<void> {
    const left = this.#startedAt + this.o.settleMs - Date.now();
    if (left <= 0 || signal?.aborted) return;
    await new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener("abort", finish);
        resolve();
      };
      const timer = setTimeout(finish, left);
      const unsubscribe = this.registry.subscribe(() => {
        if (ready()) finish();
      });
      signal?.addEventListener("abort", finish, { once: true });
    });
  }

  async #registerPath(ref: string, live: HiveEntry[], o: ResolveOptions): Promise<Resolved> {
    const errors: string[] = [];
    for (const hive of live) {
      try {
        const model = await this.hives.provisionModel(hive, ref, {}, o.signal, undefined, undefined, o.admin);
        this.registry.modelProvisioned(hive.id, model);
        return { model: model.id, hiveModels: [{ hive, model }] };
      } catch (err) {
        if (o.signal?.aborted) throw err;
        errors.push(`hive ${hive.id}: ${(err as Error).message}`);
      }
    }
    throw new ModelNotFoundError(ref, `no hive could use it (${errors.join("; ")})`);
  }

  /**
   * A Hugging Face repo for a type that loads repos (vLLM, TensorRT-LLM): fetched whole by a hive
   * where that type is installed (the first live one, the queen's own machine first); the memory a
   * worker needs is estimated from its config.json once the hive has it. No hive has the type: 409
   * saying, per hive, why.
   */
  async #fetchRepo(ref: string, live: HiveEntry[], o: ResolveOptions, type: WorkerTypeDescriptor): Promise<Resolved> {
    const narrate = o.narrate ?? silent;
    const chosen = live.filter((h) => o.hive === undefined || h.id === o.hive);
    const hive = chosen.find((h) => hiveRunsAnywhere(h, type));
    if (hive === undefined)
      throw typeNotInstalledError(
        type,
        chosen,
        live.filter((h) => !chosen.includes(h) && hiveRunsAnywhere(h, type)).map((h) => h.id),
      );
    narrate("queen", `${ref}: a Hugging Face repo for worker type ${type.id}; fetching it on hive ${hive.id}`);
    const model = await this.hives.provisionModel(
      hive,
      ref,
      { narrate: (m) => narrate(`hive ${hive.id}`, m), progress: o.progress },
      o.signal,
      [],
      "hf-repo",
      o.admin,
    );
    this.registry.modelProvisioned(hive.id, model);
    return { model: model.id, hiveModels: this.registry.findModel(model.id) };
  }

  /** A model no hive has: read its header (through a hive), choose where it fits, have that hive fetch it. */
  async #fetch(ref: string, live: HiveEntry[], o: ResolveOptions): Promise<Resolved> {
    const narrate = o.narrate ?? silent;
    const reader = live.find((h) => h.id === o.hive) ?? (live[0] as HiveEntry);
    const inspection = await this.hives.inspectModel(reader, ref, undefined, undefined, o.signal, o.admin);
    const already = this.registry.findModel(inspection.model_id);
    if (already.some((h) => o.hive === undefined || h.hive.id === o.hive)) {
      return { model: inspection.model_id, hiveModels: already };
    }
    const sizeBytes = inspection.files.reduce((n, f) => n + f.size_bytes, 0);
    const facts: ModelFacts = { size_bytes: sizeBytes, gguf: inspection.gguf };
    const type = this.types.forModel(inspection.model_id, o.workerType);
    const candidates = live
      .filter((h) => o.hive === undefined || h.id === o.hive)
      .map((hive) => ({ hive, hasModel: false }));
    const placement = choosePlacement(candidates, this.pending.load(inspection.model_id), {
      policy: this.o.policy,
      workerType: type,
      need: (device) => estimateWorkerMemory(type, facts, device.kind),
    });
    narrate(
      "queen",
      `${inspection.model_id}: ${inspection.gguf.architecture} ${inspection.gguf.quantization}, ${formatBytes(sizeBytes)} to download, needs about ${formatBytes(placement.needBytes)}; fetching it on hive ${placement.hive.id}`,
    );
    const hive = placement.hive;
    // another hive that holds it shares it on the LAN rather than the internet
    const peers = already.map((h) => ({ hive_id: h.hive.id, url: h.hive.url }));
    const model = await this.hives.provisionModel(
      hive,
      ref,
      { narrate: (m) => narrate(`hive ${hive.id}`, m), progress: o.progress },
      o.signal,
      peers,
      undefined,
      o.admin,
    );
    this.registry.modelProvisioned(hive.id, model);
    return { model: model.id, hiveModels: this.registry.findModel(model.id) };
  }
}

/** Catalog entries of a model that cannot be served (Failed: a file truncated or gone), said in words. */
export function unusableCopies(registry: ClusterRegistry, model: string): string {
  const key = norm(model);
  const found: string[] = [];
  for (const hive of registry.hives.values()) {
    for (const m of hive.models) {
      if (m.status !== "Available" && (norm(m.id) === key || m.path === model))
        found.push(`hive ${hive.id} has it, but it is ${m.status}${m.error ? `: ${m.error}` : ""}`);
    }
  }
  return found.length > 0 ? ` (${found.join("; ")})` : "";
}
