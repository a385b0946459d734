import {
  type ClusterEvent,
  type ClusterHive,
  type ClusterSnapshot,
  type ClusterWorker,
  type Device,
  type HiveCommand,
  type HiveHeartbeat,
  type HiveModel,
  type HiveState,
  type HiveWorkerReport,
  type InstalledWorkerType,
  SERVING_STATUSES,
  type WorkerCapability,
  type WorkerHeartbeat,
} from "@rbee/contract";
import { capabilitiesOf } from "@rbee/worker-types";

/** Hand-started workers that heartbeat to the queen directly belong to this pseudo-hive. */
export const DIRECT_HIVE_ID = "(direct)";

export interface HiveEntry {
  id: string;
  url: string;
  version: string;
  startedAt: string;
  intervalMs: number;
  devices: Device[];
  models: HiveModel[];
  /** Its worker catalog; undefined for a hive too old to report one (it runs the llm worker). */
  workerTypes?: InstalledWorkerType[] | undefined;
  lastSeen: number;
  state: HiveState;
  /** Its last heartbeat said it stops gracefully: nothing is routed or placed there. */
  stopping?: boolean;
}

/** What a worker serves: what its hive or its own heartbeat says, else what its type's descriptor says. */
export function workerCapabilities(w: WorkerEntry): readonly WorkerCapability[] {
  return w.report.capabilities ?? w.report.heartbeat?.capabilities ?? capabilitiesOf(w.report.worker_type);
}

/** A worker as the queen tracks it: the latest report plus what only the queen knows. */
export interface WorkerEntry {
  id: string;
  hiveId: string;
  report: HiveWorkerReport;
  /** Requests routed to it and not finished. */
  inFlight: number;
  /** When its last request finished (or it appeared). */
  lastActivity: number;
  /** Stop it after this long without requests; Infinity keeps it. */
  keepAliveMs: number;
  /** The queen asked its hive to stop it. */
  stopping: boolean;
  /** It takes no new requests: it finishes its own, then stops to make room for another model. */
  draining: boolean;
  /** Memory it holds on its device as placement counts it: the queen's estimate at spawn, else what it reports. */
  memoryBytes: number;
  addedAt: number;
  /** When the latest report of it arrived. */
  lastReport: number;
}

export type ClusterListener = (event: ClusterEvent) => void;

const norm = (s: string) => s.toLowerCase();
/** How long a model a hive just said it holds is kept in its catalog before its heartbeats show it. */
const PROVISIONED_MEMORY_MS = 30_000;

/**
 * Everything the queen knows about the cluster, rebuilt from heartbeats alone: a restarted queen
 * knows every hive and worker again after one heartbeat round. A hive is stale after 3 missed
 * intervals (nothing new is routed to it) and lost after 6.
 *
 * It owns its entries: every change to a hive or a worker goes through a method here, and each one
 * that others may want to see is an event (`subscribe`, and the queen's `GET /v1/events`): hives
 * joining, turning stale or lost, stopping; their catalogs changing; workers added, changing
 * status, draining, stopping, removed. Request accounting (in flight, last activity) changes with
 * every request and is not an event; the snapshot carries it.
 */
export class ClusterRegistry {
  readonly hives = new Map<string, HiveEntry>();
  readonly workers = new Map<string, WorkerEntry>();
  /** Worker ids by hive: a heartbeat looks at its own hive's workers, not at the whole cluster's. */
  #byHive = new Map<string, Set<string>>();
  #listeners = new Set<ClusterListener>();
  /** Workers stopped on the queen's request, and when. */
  #stopped = new Map<string, number>();
  /** Models removed from a hive's catalog on the queen's request ("hive\0model" → when). */
  #removedModels = new Map<string, number>();
  /** Models a hive just said it holds ("hive\0model", lower case), until its heartbeats list them. */
  #provisioned = new Map<string, { hiveId: string; model: HiveModel; at: number }>();
  #defaultKeepAliveMs: number;
  #intervalMs: number;

  constructor(options: { defaultKeepAliveMs: number; heartbeatIntervalMs: number }) {
    this.#defaultKeepAliveMs = options.defaultKeepAliveMs;
    this.#intervalMs = options.heartbeatIntervalMs;
  }

  subscribe(listener: ClusterListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A hive's worker catalog as it answered a package change (before its next heartbeat says so). */
  setWorkerTypes(hiveId: string, types: InstalledWorkerType[], now = Date.now()): void {
    const hive = this.hives.get(hiveId);
    if (hive === undefined) return;
    const before = catalogKey(hive);
    hive.workerTypes = types;
    this.#catalogChanged(hive, before, now);
  }

  ingestHiveHeartbeat(hb: HiveHeartbeat, now = Date.now()): void {
    const existing = this.hives.get(hb.hive_id);
    const models = this.#withProvisioned(
      hb.hive_id,
      this.#withoutRemoved(hb.hive_id, hb.models, hb.interval_ms, now),
      now,
    );
    const entry: HiveEntry = {
      id: hb.hive_id,
      url: hb.url.replace(/\/+$/, ""),
      version: hb.version,
      startedAt: hb.started_at,
      intervalMs: hb.interval_ms,
      devices: hb.devices,
      models,
      workerTypes: hb.worker_types,
      lastSeen: now,
      state: "live",
      ...(hb.stopping === true ? { stopping: true } : {}),
    };
    this.hives.set(hb.hive_id, entry);
    if (!existing) this.#emit({ type: "hive_joined", at: now, hive_id: hb.hive_id, url: entry.url });
    else {
      if (existing.state !== "live") this.#emit({ type: "hive_state", at: now, hive_id: hb.hive_id, state: "live" });
      this.#catalogChanged(entry, catalogKey(existing), now);
    }
    if ((existing?.stopping === true) !== (entry.stopping === true))
      this.#emit({ type: "hive_stopping", at: now, hive_id: hb.hive_id, stopping: entry.stopping === true });

    const seen = new Set<string>();
    for (const report of hb.workers) {
      const stoppedAt = this.#stopped.get(report.worker_id);
      if (stoppedAt !== undefined) {
        if (now - stoppedAt < 3 * hb.interval_ms) continue;
        this.#stopped.delete(report.worker_id);
      }
      seen.add(report.worker_id);
      this.#upsertWorker(hb.hive_id, report, now);
    }
    // a worker the hive no longer reports is gone; one the queen just added from a spawn reply may
    // not be in a heartbeat that was already on its way, so it gets two intervals of grace
    for (const id of [...(this.#byHive.get(hb.hive_id) ?? [])]) {
      const w = this.workers.get(id);
      if (!w || seen.has(id) || now - w.addedAt < 2 * hb.interval_ms) continue;
      this.removeWorker(id, "its hive no longer reports it", now);
    }
  }

  /**
   * Forgets a model the queen just had a hive remove: a heartbeat the hive sent before the removal
   * may still arrive and list it, so it stays hidden until a heartbeat without it (or 3 intervals).
   */
  forgetModel(hiveId: string, modelId: string, now = Date.now()): void {
    this.#removedModels.set(`${hiveId}\0${modelId}`, now);
    this.#provisioned.delete(`${hiveId}\0${norm(modelId)}`);
    const hive = this.hives.get(hiveId);
    if (hive === undefined) return;
    const before = catalogKey(hive);
    hive.models = hive.models.filter((m) => m.id !== modelId);
    this.#catalogChanged(hive, before, now);
  }

  /**
   * A model a hive just said it holds (fetched, or a file path added): in its catalog at once, and
   * kept there until the hive's own heartbeats list it (one already on its way may not, or may
   * still show it Downloading), for 30 s at most.
   */
  modelProvisioned(hiveId: string, model: HiveModel, now = Date.now()): void {
    this.#removedModels.delete(`${hiveId}\0${model.id}`);
    this.#provisioned.set(`${hiveId}\0${norm(model.id)}`, { hiveId, model, at: now });
    const hive = this.hives.get(hiveId);
    if (hive === undefined) return;
    const before = catalogKey(hive);
    hive.models = [...hive.models.filter((m) => m.id !== model.id), model];
    this.#catalogChanged(hive, before, now);
  }

  /** A heartbeat's models, with those the hive said it holds since, that the heartbeat does not show yet. */
  #withProvisioned(hiveId: string, models: HiveModel[], now: number): HiveModel[] {
    if (this.#provisioned.size === 0) return models;
    let out = models;
    for (const [key, p] of this.#provisioned) {
      if (p.hiveId !== hiveId) continue;
      const reported = models.find((m) => norm(m.id) === norm(p.model.id));
      if (reported?.status === "Available" || now - p.at > PROVISIONED_MEMORY_MS) {
        this.#provisioned.delete(key);
        continue;
      }
      out = [...out.filter((m) => m !== reported), p.model];
    }
    return out;
  }

  #catalogChanged(hive: HiveEntry, before: string, now: number): void {
    if (catalogKey(hive) === before) return;
    this.#emit({
      type: "hive_catalog",
      at: now,
      hive_id: hive.id,
      models: hive.models,
      ...(hive.workerTypes ? { worker_types: hive.workerTypes } : {}),
    });
  }

  #withoutRemoved(hiveId: string, models: HiveModel[], intervalMs: number, now: number): HiveModel[] {
    if (this.#removedModels.size === 0) return models;
    const listed = new Set(models.map((m) => m.id));
    for (const [key, at] of this.#removedModels) {
      const [hive, model] = key.split("\0") as [string, string];
      if (hive === hiveId && (!listed.has(model) || now - at > 3 * intervalMs)) this.#removedModels.delete(key);
    }
    return models.filter((m) => !this.#removedModels.has(`${hiveId}\0${m.id}`));
  }

  /**
   * Commands for a hive, in the reply to its heartbeat: the keep-alive of each of its workers that a
   * request changed since the hive last reported it, so that the hive keeps it for a restarted queen.
   */
  hiveCommands(hiveId: string): HiveCommand[] {
    const commands: HiveCommand[] = [];
    for (const w of this.workers.values()) {
      if (w.hiveId !== hiveId || w.stopping) continue;
      const keepAliveMs = Number.isFinite(w.keepAliveMs) ? w.keepAliveMs : null;
      if (w.report.keep_alive_ms !== keepAliveMs)
        commands.push({ type: "set_keep_alive", worker_id: w.id, keep_alive_ms: keepAliveMs });
    }
    return commands;
  }

  /** A worker started by hand that heartbeats to the queen. */
  ingestDirectHeartbeat(hb: WorkerHeartbeat, now = Date.now()): void {
    const url = hb.url ?? "";
    const report: HiveWorkerReport = {
      worker_id: hb.worker_id,
      worker_type: hb.worker_type ?? "unknown",
      model: hb.model,
      device: hb.device,
      url,
      port: hb.port ?? (Number(new URL(url || "http://x:1").port) || 1),
      pid: hb.pid ?? null,
      status: hb.status,
      restarts: 0,
      last_exit: null,
      started_at: new Date(now - hb.uptime_seconds * 1000).toISOString(),
      heartbeat_age_ms: 0,
      heartbeat: hb,
      keep_alive_ms: null,
    };
    if (!this.hives.has(DIRECT_HIVE_ID)) {
      this.hives.set(DIRECT_HIVE_ID, {
        id: DIRECT_HIVE_ID,
        url: "",
        version: "",
        startedAt: new Date(now).toISOString(),
        intervalMs: this.#intervalMs,
        devices: [],
        models: [],
        lastSeen: now,
        state: "live",
      });
    }
    const direct = this.hives.get(DIRECT_HIVE_ID) as HiveEntry;
    direct.lastSeen = now;
    direct.state = "live";
    this.#upsertWorker(DIRECT_HIVE_ID, report, now);
    if (hb.status === "Stopped") this.removeWorker(hb.worker_id, "it stopped", now);
  }

  /**
   * A worker the queen just had spawned: known at once, before the next heartbeat, with the
   * keep-alive it was started with and the memory placement planned for it (when given).
   */
  addSpawnedWorker(
    hiveId: string,
    report: HiveWorkerReport,
    keepAliveMs: number,
    now = Date.now(),
    memoryBytes?: number,
  ): WorkerEntry {
    const entry = this.#upsertWorker(hiveId, report, now, { keepAliveMs, memoryBytes });
    entry.keepAliveMs = keepAliveMs;
    if (memoryBytes !== undefined) entry.memoryBytes = memoryBytes;
    return entry;
  }

  /** A request was routed to the worker (no event: the snapshot's `in_flight` carries it). */
  requestStarted(w: WorkerEntry): void {
    w.inFlight++;
  }

  /** A request on the worker ended; a keep-alive it asked for applies from now. */
  requestEnded(w: WorkerEntry, keepAliveMs?: number, now = Date.now()): void {
    w.inFlight = Math.max(0, w.inFlight - 1);
    w.lastActivity = now;
    if (keepAliveMs !== undefined) w.keepAliveMs = keepAliveMs;
  }

  /** The worker takes no new request (it finishes its own, then stops), or is taken back into service. */
  setDraining(w: WorkerEntry, draining: boolean, reason: string, now = Date.now()): void {
    if (w.draining === draining) return;
    w.draining = draining;
    if (this.workers.get(w.id) === w)
      this.#emit({ type: "worker_draining", at: now, worker_id: w.id, draining, reason });
  }

  /** The queen asks the worker's hive to stop it, or the stop failed and it serves on. */
  setStopping(w: WorkerEntry, stopping: boolean, reason: string, now = Date.now()): void {
    if (w.stopping === stopping) return;
    w.stopping = stopping;
    if (this.workers.get(w.id) === w)
      this.#emit({ type: "worker_stopping", at: now, worker_id: w.id, stopping, reason });
  }

  /**
   * A worker did not answer a request: nothing more is routed to it (it counts as Starting) until
   * its hive reports it again.
   */
  workerUnanswered(w: WorkerEntry, now = Date.now()): void {
    const from = w.report.status;
    if (from !== "Ready" && from !== "Busy") return;
    w.report = { ...w.report, status: "Starting" };
    if (this.workers.get(w.id) === w)
      this.#emit({ type: "worker_status", at: now, worker_id: w.id, status: "Starting", from });
  }

  /**
   * Forgets a worker. One stopped on the queen's request is also ignored in the heartbeats of the
   * next few intervals, which may have left its hive before the stop and would bring it back.
   */
  removeWorker(id: string, reason: string, now = Date.now(), stopped = false): void {
    if (stopped) this.#stopped.set(id, now);
    const entry = this.workers.get(id);
    if (!entry) return;
    this.workers.delete(id);
    this.#unindex(entry);
    this.#emit({ type: "worker_removed", at: now, worker_id: id, reason });
  }

  /** Moves hives to stale and lost as their heartbeats age; call it every second or so. */
  sweep(now = Date.now()): void {
    for (const [id, at] of this.#stopped) if (now - at > 6 * this.#intervalMs) this.#stopped.delete(id);
    for (const w of [...this.workers.values()]) {
      if (w.hiveId === DIRECT_HIVE_ID && now - w.lastReport > 6 * this.#intervalMs) {
        this.removeWorker(w.id, "it stopped heartbeating", now);
      }
    }
    for (const hive of this.hives.values()) {
      if (hive.id === DIRECT_HIVE_ID) continue;
      const age = now - hive.lastSeen;
      const interval = hive.intervalMs || this.#intervalMs;
      const state: HiveState = age > 6 * interval ? "lost" : age > 3 * interval ? "stale" : "live";
      if (state !== hive.state) {
        hive.state = state;
        this.#emit({ type: "hive_state", at: now, hive_id: hive.id, state });
      }
    }
  }

  /**
   * Marks a live hive stale at once, before its heartbeats age: one of its workers refused a
   * connection and the hive did not answer either. Its next heartbeat makes it live again.
   */
  suspect(hiveId: string, reason: string, now = Date.now()): void {
    const hive = this.hives.get(hiveId);
    if (hive?.state !== "live" || hive.id === DIRECT_HIVE_ID) return;
    hive.state = "stale";
    // heartbeats that stopped now make it lost 3 intervals from now, not 6
    hive.lastSeen = Math.min(hive.lastSeen, now - 3 * (hive.intervalMs || this.#intervalMs));
    this.#emit({ type: "hive_state", at: now, hive_id: hiveId, state: "stale", reason });
  }

  /** Memory of the workers on a hive's device, as placement counts it. */
  reserved(hiveId: string, deviceId: string): number {
    let n = 0;
    for (const w of this.workers.values()) if (w.hiveId === hiveId && w.report.device === deviceId) n += w.memoryBytes;
    return n;
  }

  isRoutable(w: WorkerEntry, now = Date.now()): boolean {
    if (w.stopping || w.draining || !SERVING_STATUSES.includes(w.report.status)) return false;
    // its hive no longer hears its heartbeats (frozen, or stuck): requests sent to it would hang
    if (w.report.stale === true) return false;
    // a hand-started worker answers for itself: stale after 3 of its own missed heartbeats
    if (w.hiveId === DIRECT_HIVE_ID) return now - w.lastReport <= 3 * this.#intervalMs;
    return this.isUsable(this.hives.get(w.hiveId));
  }

  /** A hive requests may go to and workers may be placed on: live, and not stopping. */
  isUsable(hive: HiveEntry | undefined): hive is HiveEntry {
    return hive?.state === "live" && hive.stopping !== true;
  }

  /** Workers that can take a request for `model` now (that serve `capability`, when given). */
  routableWorkers(model: string, capability?: WorkerCapability): WorkerEntry[] {
    const m = norm(model);
    return [...this.workers.values()].filter(
      (w) =>
        norm(w.report.model) === m &&
        w.report.group?.role !== "shard" &&
        this.isRoutable(w) &&
        (capability === undefined || workerCapabilities(w).includes(capability)),
    );
  }

  /** Workers of `model` still coming up (or up but not yet Ready) on live hives. */
  startingWorkers(model: string): WorkerEntry[] {
    const m = norm(model);
    return [...this.workers.values()].filter(
      (w) =>
        norm(w.report.model) === m &&
        w.report.status === "Starting" &&
        !w.stopping &&
        this.isUsable(this.hives.get(w.hiveId)),
    );
  }

  /** Catalog entries on live hives matching a model id (any case) or an absolute file path. */
  findModel(ref: string): Array<{ hive: HiveEntry; model: HiveModel }> {
    const r = norm(ref);
    const out: Array<{ hive: HiveEntry; model: HiveModel }> = [];
    for (const hive of this.hives.values()) {
      if (!this.isUsable(hive)) continue;
      for (const model of hive.models) {
        if (model.status !== "Available") continue;
        if (norm(model.id) === r || model.path === ref) out.push({ hive, model });
      }
    }
    return out;
  }

  /** Ids of every model a client can ask for now: running workers' and the hives' catalogs'. */
  servableModels(): string[] {
    const ids = new Set<string>();
    for (const w of this.workers.values()) if (!w.stopping) ids.add(w.report.model);
    for (const hive of this.hives.values()) {
      if (hive.state === "lost") continue;
      for (const m of hive.models) if (m.status === "Available") ids.add(m.id);
    }
    return [...ids].sort();
  }

  toClusterWorker(w: WorkerEntry, now = Date.now()): ClusterWorker {
    const hb = w.report.heartbeat;
    return {
      worker_id: w.id,
      hive_id: w.hiveId,
      worker_type: w.report.worker_type,
      capabilities: [...workerCapabilities(w)],
      model: w.report.model,
      device: w.report.device,
      url: w.report.url,
      pid: w.report.pid,
      status: w.report.status,
      routable: this.isRoutable(w),
      stale: w.report.stale === true || undefined,
      memory_bytes: w.memoryBytes,
      draining: w.draining || undefined,
      stopping: w.stopping || undefined,
      slots: hb?.slots ?? 1,
      in_flight: w.inFlight,
      requests_total: hb?.requests_total ?? 0,
      tokens_generated: hb?.tokens_generated ?? 0,
      tokens_per_second: hb?.throughput_tokens_per_second ?? 0,
      restarts: w.report.restarts,
      last_exit: w.report.last_exit,
      keep_alive_ms: Number.isFinite(w.keepAliveMs) ? w.keepAliveMs : null,
      idle_ms: w.inFlight > 0 ? 0 : Math.max(0, now - w.lastActivity),
      vram_used: hb?.vram_used ?? 0,
      ...(w.report.group ? { group: { group_id: w.report.group.group_id, role: w.report.group.role } } : {}),
    };
  }

  snapshot(queen: ClusterSnapshot["queen"], now = Date.now()): ClusterSnapshot {
    const hives: ClusterHive[] = [...this.hives.values()]
      .filter((h) => h.id !== DIRECT_HIVE_ID)
      .map((h) => ({
        id: h.id,
        url: h.url,
        version: h.version,
        state: h.state,
        last_seen_ms: now - h.lastSeen,
        ...(h.stopping ? { stopping: true } : {}),
        started_at: h.startedAt,
        devices: h.devices,
        models: h.models,
      }));
    return {
      queen,
      hives,
      workers: [...this.workers.values()].map((w) => this.toClusterWorker(w, now)),
      models: this.servableModels(),
    };
  }

  #upsertWorker(
    hiveId: string,
    report: HiveWorkerReport,
    now: number,
    spawned?: { keepAliveMs: number; memoryBytes: number | undefined },
  ): WorkerEntry {
    const existing = this.workers.get(report.worker_id);
    if (existing) {
      const from = existing.report.status;
      existing.report = report;
      if (existing.hiveId !== hiveId) {
        this.#unindex(existing);
        existing.hiveId = hiveId;
        this.#index(existing);
      }
      if (report.memory_bytes !== undefined) existing.memoryBytes = report.memory_bytes;
      existing.lastReport = now;
      if (from !== report.status) {
        this.#emit({ type: "worker_status", at: now, worker_id: report.worker_id, status: report.status, from });
      }
      return existing;
    }
    const keepAlive =
      spawned?.keepAliveMs ??
      (report.keep_alive_ms === undefined
        ? this.#defaultKeepAliveMs
        : (report.keep_alive_ms ?? Number.POSITIVE_INFINITY));
    const entry: WorkerEntry = {
      id: report.worker_id,
      hiveId,
      report,
      inFlight: 0,
      lastActivity: now,
      keepAliveMs: keepAlive,
      stopping: false,
      draining: false,
      memoryBytes: spawned?.memoryBytes ?? report.memory_bytes ?? report.heartbeat?.vram_used ?? 0,
      addedAt: now,
      lastReport: now,
    };
    this.workers.set(entry.id, entry);
    this.#index(entry);
    this.#emit({ type: "worker_added", at: now, worker: this.toClusterWorker(entry, now) });
    return entry;
  }

  #index(w: WorkerEntry): void {
    const ids = this.#byHive.get(w.hiveId) ?? new Set<string>();
    ids.add(w.id);
    this.#byHive.set(w.hiveId, ids);
  }

  #unindex(w: WorkerEntry): void {
    const ids = this.#byHive.get(w.hiveId);
    ids?.delete(w.id);
    if (ids?.size === 0) this.#byHive.delete(w.hiveId);
  }

  #emit(event: ClusterEvent): void {
    for (const l of this.#listeners) l(event);
  }
}

/**
 * What a hive's catalogs hold, as a string that changes when they do: a worker type's `updated_at`
 * is left out (hives of an earlier build stamped it anew each time they looked for their engines,
 * every minute, with nothing else changed).
 */
function catalogKey(hive: HiveEntry): string {
  const types = hive.workerTypes?.map(({ updated_at: _, ...rest }) => rest) ?? null;
  return JSON.stringify([hive.models, types]);
}
