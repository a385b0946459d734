import { randomBytes } from "node:crypto";
import {
  type ClusterGroup,
  type Device,
  type GroupShard,
  InsufficientMemoryError,
  type ModelFacts,
  SERVING_STATUSES,
  WorkerUnavailableError,
} from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import { requireWorkerType } from "@rbee/worker-types";
import type { ClusterRegistry, HiveEntry, WorkerEntry } from "../registry/cluster-registry.js";
import { memberName, type PlannedShard, planGroup, type ShardCandidate } from "./group-planner.js";
import type { HiveClient } from "./hive-client.js";
import { type DeviceLoad, deviceOptions, estimateWorkerMemory, formatBytes } from "./placement.js";

type Narrate = (source: string, message: string) => void;

/** How a group is started: what its coordinator runs with. */
export interface GroupSpawnOptions {
  ctxSize?: number;
  parallel?: number;
  threads?: number;
  keepAliveMs: number;
  /** `--devices`: exactly these devices, in this order. */
  devices?: ReadonlyArray<{ hive: string; device: string }>;
  signal?: AbortSignal;
  narrate?: Narrate;
}

interface Shard {
  workerId: string;
  hiveId: string;
  device: Device;
  fraction: number;
  memoryBytes: number;
  rpc: string;
}

interface Group {
  id: string;
  model: string;
  /** The hive whose catalog holds the model: the coordinator runs there. */
  coordinatorHive: string;
  coordinatorId: string;
  shards: Shard[];
  options: GroupSpawnOptions;
  generation: number;
  health: "healthy" | "degraded" | "failed";
  reason?: string;
  heals: number;
  healing: Promise<void> | undefined;
  /** When a failed heal may be tried again. */
  retryAt: number;
  /** The processes of the members when last seen all serving: a shard restarted under a coordinator that was not is caught by them. */
  seen?: { coordinatorPid: number | null; shardPids: string } | undefined;
}

export interface WorkerGroupsOptions {
  log: Logger;
  /** Memory reserved by rbee's workers and promised to spawns, which placement takes off devices' free figures. */
  load: Omit<DeviceLoad, "replicas">;
  /** Hives that hold the model's file, with what placement reads of it. */
  holders(model: string): Array<{ hive: HiveEntry; facts: ModelFacts }>;
  /** Fails the requests in flight on a worker with this error (their clients hear at once). */
  failInFlight(workerId: string, error: Error): void;
  /** Something changed that requests waiting for a worker should look at. */
  changed(): void;
}

const SHARD_TYPE = "rpc-shard";
const COORDINATOR_TYPE = "llama-server";
/** A group that could not be rebuilt (memory short) is tried again after this. */
const RETRY_MS = 5000;

/**
 * Worker groups: one model split over the memory of several devices (llama.cpp's RPC backend), one
 * worker to clients. The queen plans the split (group-planner), has each device's hive start a shard
 * (`rpc-shard`: ggml-rpc-server), then one hive start the coordinator (a llama-server worker with
 * `--rpc` over the shards and `--tensor-split`), and keeps the group whole:
 *
 * - a shard whose process dies is restarted by its own hive on the same address; the coordinator's
 *   llama-server aborts (llama.cpp's RPC client does) and its hive restarts it, and it waits for the
 *   shard before starting again;
 * - a shard whose hive is lost (or that its hive gave up on) is placed again, on the same device if
 *   its hive lives, else on another that fits, and the coordinator is started again over the new
 *   member list. Requests in flight on the group fail at once with a 503; new ones wait.
 * - when no device has the memory, the group is `failed` with the reason, and tried again later.
 */
export class WorkerGroups {
  readonly #groups = new Map<string, Group>();

  constructor(
    private readonly registry: ClusterRegistry,
    private readonly hives: HiveClient,
    private readonly o: WorkerGroupsOptions,
  ) {}

  /** Plans a split of `model` over several devices, starts the group, and resolves its coordinator once every member is Ready. */
  async spawn(model: string, so: GroupSpawnOptions): Promise<WorkerEntry> {
    const narrate = so.narrate ?? (() => {});
    const holder = this.o.holders(model)[0];
    if (holder === undefined)
      throw new WorkerUnavailableError(`no hive has ${model} in its catalog to start a worker group from`);
    const need = this.#need(holder.facts, so);
    const plan = planGroup(this.#candidates(), need, so.devices);
    const coordinatorHive =
      plan.find((p) => this.o.holders(model).some((h) => h.hive.id === p.hive.id))?.hive ?? holder.hive;
    const id = `grp-${model
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, "-")
      .slice(0, 40)}-${randomBytes(3).toString("hex")}`;
    const group: Group = {
      id,
      model,
      coordinatorHive: coordinatorHive.id,
      coordinatorId: `${id}-c0`,
      shards: [],
      options: so,
      generation: 0,
      health: "degraded",
      heals: 0,
      healing: undefined,
      retryAt: 0,
    };
    this.#groups.set(id, group);
    let started!: () => void;
    group.healing = new Promise<void>((r) => {
      started = r;
    });
    narrate(
      "queen",
      `worker group ${id}: ${model} needs about ${formatBytes(need)}; splitting it over ${plan
        .map(
          (p) =>
            `${memberName(p.hive.id, p.device.id)} (${Math.round(p.fraction * 100)} %, ${formatBytes(p.memoryBytes)})`,
        )
        .join(", ")}`,
    );
    try {
      const single = new Set(plan.map((p) => p.hive.id)).size === 1;
      group.shards = await Promise.all(plan.map((p, i) => this.#spawnShard(group, p, i, single, so.signal)));
      narrate(
        "queen",
        `worker group ${id}: ${group.shards.length} shards ready; starting its coordinator on hive ${coordinatorHive.id}`,
      );
      const coordinator = await this.#spawnCoordinator(group, so.signal);
      group.health = "healthy";
      this.o.changed();
      return coordinator;
    } catch (err) {
      this.#groups.delete(id);
      await this.#stopMembers(group);
      throw err;
    } finally {
      group.healing = undefined;
      started();
    }
  }

  /** True when at least two devices of live hives can run a shard: a model could be split over them. */
  splittable(): boolean {
    return this.#candidates().length >= 2;
  }

  /** The groups as `/v1/cluster` shows them. */
  view(): ClusterGroup[] {
    return [...this.#groups.values()].map((g) => ({
      group_id: g.id,
      model: g.model,
      health: g.health,
      ...(g.reason ? { reason: g.reason } : {}),
      coordinator: g.coordinatorId,
      members: [
        {
          worker_id: g.coordinatorId,
          role: "coordinator" as const,
          hive_id: g.coordinatorHive,
          device: "cpu",
          status: this.registry.workers.get(g.coordinatorId)?.report.status ?? "Stopped",
        },
        ...g.shards.map((s) => ({
          worker_id: s.workerId,
          role: "shard" as const,
          hive_id: s.hiveId,
          device: s.device.id,
          fraction: s.fraction,
          memory_bytes: s.memoryBytes,
          status: this.registry.workers.get(s.workerId)?.report.status ?? "Stopped",
        })),
      ],
      heals: g.heals,
    }));
  }

  /**
   * For a request whose model a group serves and which has no routable worker now: waits until the
   * group serves again (it heals, or its coordinator restarts), and resolves its coordinator.
   * Undefined when no group serves the model, or the group failed (the request is refused, not held).
   */
  waitFor(model: string, signal: AbortSignal): Promise<WorkerEntry> | undefined {
    const m = model.toLowerCase();
    const group = [...this.#groups.values()].find((g) => g.model.toLowerCase() === m);
    if (group === undefined) return undefined;
    if (group.health === "failed")
      throw new InsufficientMemoryError(`worker group ${group.id} for ${model} failed: ${group.reason}`, {
        group_id: group.id,
      });
    return new Promise<WorkerEntry>((resolve, reject) => {
      const look = () => {
        if (signal.aborted) return finish(() => reject(signal.reason));
        if (group.health === "failed")
          return finish(() =>
            reject(new InsufficientMemoryError(`worker group ${group.id} for ${model} failed: ${group.reason}`, {})),
          );
        const c = this.registry.workers.get(group.coordinatorId);
        if (c && group.health === "healthy" && this.registry.isRoutable(c)) finish(() => resolve(c));
      };
      const timer = setInterval(look, 100);
      const unsubscribe = this.registry.subscribe(look);
      const finish = (then: () => void) => {
        clearInterval(timer);
        unsubscribe();
        then();
      };
      look();
    });
  }

  /** Checks every group's members; called every sweep. Heals the ones that lost a shard. */
  sweep(now = Date.now()): void {
    this.#learn();
    for (const g of this.#groups.values()) {
      if (g.healing) continue;
      const lost = g.shards.filter((s) => this.#isLost(s));
      const coordinator = this.registry.workers.get(g.coordinatorId);
      const serving =
        coordinator !== undefined &&
        this.registry.isRoutable(coordinator) &&
        g.shards.every((s) =>
          SERVING_STATUSES.includes(this.registry.workers.get(s.workerId)?.report.status ?? "Stopped"),
        );
      if (lost.length === 0) {
        if (serving && coordinator && this.#staleCoordinator(g, coordinator)) {
          this.#heal(g, [], now, "a shard was restarted while the coordinator was idle (its RPC connection is dead)");
          continue;
        }
        // a shard restarted by its own hive, and a coordinator waiting for it: degraded until both serve
        if (g.health !== "failed" || serving) this.#setHealth(g, serving ? "healthy" : "degraded");
        if ((coordinator === undefined || coordinator.report.status === "Failed") && now >= g.retryAt)
          this.#heal(g, [], now);
        continue;
      }
      if (g.health === "failed" && now < g.retryAt) continue;
      this.#heal(g, lost, now);
    }
  }

  /** Stops a group's members when its coordinator is stopped by request. */
  async forget(workerId: string): Promise<void> {
    for (const g of this.#groups.values()) {
      if (g.coordinatorId !== workerId) continue;
      this.#groups.delete(g.id);
      await this.#stopMembers(g);
    }
  }

  /**
   * Groups this queen did not start (it restarted; the queen stores nothing): learned from their
   * coordinators as the hives report them, with the members and split they were started with.
   */
  #learn(): void {
    for (const w of this.registry.workers.values()) {
      const g = w.report.group;
      if (g?.role !== "coordinator" || g.shards === undefined || w.stopping) continue;
      if (this.#groups.has(g.group_id)) continue;
      const split = g.tensor_split ?? [];
      const shards: Shard[] = g.shards.map((s, i) => {
        const device = this.registry.hives.get(s.hive_id)?.devices.find((d) => d.id === s.device);
        return {
          workerId: s.worker_id,
          hiveId: s.hive_id,
          device: device ?? {
            id: s.device,
            kind: "cpu",
            name: s.device,
            memory_total: 0,
            memory_used: 0,
            memory_free: 0,
          },
          fraction: split[i] ?? 1 / (g.shards?.length ?? 1),
          memoryBytes: s.memory_bytes ?? 0,
          rpc: s.rpc,
        };
      });
      const generation = Number(/-c(\d+)$/.exec(w.id)?.[1] ?? 0);
      this.#groups.set(g.group_id, {
        id: g.group_id,
        model: w.report.model,
        coordinatorHive: w.hiveId,
        coordinatorId: w.id,
        shards,
        options: { keepAliveMs: w.keepAliveMs },
        generation: Math.max(generation, ...shards.map((s) => Number(/-(\d+)$/.exec(s.workerId)?.[1] ?? 0))),
        health: this.registry.isRoutable(w) ? "healthy" : "degraded",
        heals: 0,
        healing: undefined,
        retryAt: 0,
      });
      this.o.log.info({ group_id: g.group_id, coordinator: w.id }, "worker group learned from its coordinator");
    }
  }

  #setHealth(g: Group, health: Group["health"], reason?: string): void {
    if (g.health === health && g.reason === reason) return;
    this.o.log.info({ group_id: g.id, health, reason }, "worker group health");
    g.health = health;
    g.reason = reason;
    this.o.changed();
  }

  /** A shard that will not come back by itself: its hive is gone, or its hive gave up on it (Failed), or it left the hive's reports. */
  #isLost(s: Shard): boolean {
    const hive = this.registry.hives.get(s.hiveId);
    if (hive === undefined || hive.state !== "live") return true;
    const w = this.registry.workers.get(s.workerId);
    return w === undefined || w.report.status === "Failed";
  }

  /**
   * True when a shard's process changed (its hive restarted it) while the coordinator's did not: an
   * idle llama-server does not notice a shard going away until its next request, which then fails.
   */
  #staleCoordinator(g: Group, coordinator: WorkerEntry): boolean {
    const shardPids = g.shards.map((s) => this.registry.workers.get(s.workerId)?.report.pid ?? "-").join(",");
    const seen = g.seen;
    g.seen = { coordinatorPid: coordinator.report.pid, shardPids };
    return seen !== undefined && seen.coordinatorPid === coordinator.report.pid && seen.shardPids !== shardPids;
  }

  #heal(g: Group, lost: Shard[], now: number, why?: string): void {
    g.seen = undefined;
    if (why) this.#setHealth(g, "degraded", `worker group ${g.id}: ${why}; restarting its coordinator`);
    const reasonOf = (s: Shard) => {
      const hive = this.registry.hives.get(s.hiveId);
      return hive?.state !== "live" ? `its hive ${s.hiveId} is ${hive?.state ?? "gone"}` : "its hive gave up on it";
    };
    if (lost.length > 0) {
      const why = `worker group ${g.id} lost shard ${lost.map((s) => `${s.workerId} (${reasonOf(s)})`).join(", ")}`;
      this.#setHealth(g, "degraded", why);
      this.o.failInFlight(
        g.coordinatorId,
        new WorkerUnavailableError(`${why}; it is being rebuilt, retry the request`),
      );
    }
    g.healing = (async () => {
      const t0 = performance.now();
      const single = new Set(g.shards.map((s) => s.hiveId)).size === 1;
      for (const s of lost) {
        const i = g.shards.indexOf(s);
        const place = this.#replacement(g, s);
        if (place === undefined) {
          const free = this.#candidates()
            .filter((c) => !g.shards.some((o) => o !== s && o.hiveId === c.hive.id && o.device.id === c.device.id))
            .map((c) => `${memberName(c.hive.id, c.device.id)} ${formatBytes(Math.max(0, c.free))}`);
          g.retryAt = now + RETRY_MS;
          this.#setHealth(
            g,
            "failed",
            `shard ${s.workerId} was lost (${reasonOf(s)}) and no other device has the ${formatBytes(s.memoryBytes)} it needs free (${free.join(", ") || "no other device"}); retrying every ${RETRY_MS / 1000} s`,
          );
          return;
        }
        g.generation++;
        // the old shard's hive may live (it gave up on the shard): stop it there first
        await this.#stopWorker(s.hiveId, s.workerId);
        g.shards[i] = await this.#spawnShard(g, place, i, single, undefined);
      }
      const old = g.coordinatorId;
      await this.#stopWorker(g.coordinatorHive, old);
      g.generation++;
      g.coordinatorId = `${g.id}-c${g.generation}`;
      await this.#spawnCoordinator(g, undefined);
      g.heals++;
      this.#setHealth(g, "healthy");
      this.o.log.info({ group_id: g.id, ms: Math.round(performance.now() - t0) }, "worker group rebuilt");
    })()
      .catch((err: unknown) => {
        g.retryAt = Date.now() + RETRY_MS;
        this.#setHealth(g, "failed", `could not rebuild the group: ${(err as Error).message}`);
      })
      .finally(() => {
        g.healing = undefined;
      });
  }

  /** Where a lost shard goes: its own device if its hive lives and has the memory, else another device of the group's model's size. */
  #replacement(g: Group, s: Shard): PlannedShard | undefined {
    const used = (c: ShardCandidate) =>
      g.shards.some((o) => o !== s && o.hiveId === c.hive.id && o.device.id === c.device.id);
    const fits = this.#candidates().filter((c) => !used(c) && c.free >= s.memoryBytes);
    const same = fits.find((c) => c.hive.id === s.hiveId && c.device.id === s.device.id);
    const other = fits.sort((a, b) => b.free - a.free)[0];
    const c = same ?? other;
    return c && { hive: c.hive, device: c.device, fraction: s.fraction, memoryBytes: s.memoryBytes };
  }

  #need(facts: ModelFacts, so: GroupSpawnOptions): number {
    return estimateWorkerMemory(requireWorkerType(COORDINATOR_TYPE), facts, "cpu", {
      contextSize: so.ctxSize,
      parallel: so.parallel,
    });
  }

  /** Devices of live hives that can run a shard, with what placement may use on each. */
  #candidates(): ShardCandidate[] {
    const hives = [...this.registry.hives.values()]
      .filter((hive) => hive.state === "live" && hive.url)
      .map((hive) => ({ hive, hasModel: true }));
    return deviceOptions(hives, this.o.load, { workerType: requireWorkerType(SHARD_TYPE), need: () => 0 }).map(
      ({ hive, device, free }) => ({ hive, device, free }),
    );
  }

  async #spawnShard(g: Group, p: PlannedShard, index: number, single: boolean, signal?: AbortSignal): Promise<Shard> {
    const hive = p.hive;
    // RPC has no authentication: loopback when the whole group is on one machine, else only the
    // address the queen reaches this hive at
    const rpcHost = single ? "127.0.0.1" : new URL(hive.url).hostname.replace(/^\[|\]$/g, "");
    const report = await this.hives.spawnWorker(
      hive,
      {
        worker_type: SHARD_TYPE,
        model: g.model.toLowerCase(),
        device: p.device.id,
        worker_id: `${g.id}-s${index}-${g.generation}`,
        threads: g.options.threads,
        keep_alive_ms: null,
        memory_bytes: p.memoryBytes,
        group: { group_id: g.id, role: "shard", rpc_host: rpcHost },
      },
      signal,
    );
    const rpc = report.group?.rpc;
    if (rpc === undefined)
      throw new Error(`hive ${hive.id} started shard ${report.worker_id} without an RPC address (an older hive?)`);
    this.registry.addSpawnedWorker(hive.id, report, Number.POSITIVE_INFINITY, undefined, p.memoryBytes);
    return {
      workerId: report.worker_id,
      hiveId: hive.id,
      device: p.device,
      fraction: p.fraction,
      memoryBytes: p.memoryBytes,
      rpc,
    };
  }

  async #spawnCoordinator(g: Group, signal?: AbortSignal): Promise<WorkerEntry> {
    const hive = this.registry.hives.get(g.coordinatorHive);
    const live = hive?.state === "live" ? hive : this.o.holders(g.model).find((h) => h.hive.state === "live")?.hive;
    if (live === undefined)
      throw new WorkerUnavailableError(`no live hive holds ${g.model} to run worker group ${g.id}'s coordinator`);
    g.coordinatorHive = live.id;
    const shards: GroupShard[] = g.shards.map((s) => ({
      worker_id: s.workerId,
      hive_id: s.hiveId,
      device: s.device.id,
      rpc: s.rpc,
      memory_bytes: s.memoryBytes,
    }));
    const report = await this.hives.spawnWorker(
      live,
      {
        worker_type: COORDINATOR_TYPE,
        model: g.model,
        device: "cpu",
        worker_id: `${g.id}-c${g.generation}`,
        ctx_size: g.options.ctxSize,
        parallel: g.options.parallel,
        threads: g.options.threads,
        keep_alive_ms: Number.isFinite(g.options.keepAliveMs) ? g.options.keepAliveMs : null,
        group: { group_id: g.id, role: "coordinator", shards, tensor_split: g.shards.map((s) => s.fraction) },
      },
      signal,
    );
    g.coordinatorId = report.worker_id;
    return this.registry.addSpawnedWorker(live.id, report, g.options.keepAliveMs);
  }

  async #stopWorker(hiveId: string, workerId: string): Promise<void> {
    const hive = this.registry.hives.get(hiveId);
    const w = this.registry.workers.get(workerId);
    if (w) this.registry.setStopping(w, true, "replaced in its worker group");
    if (hive?.state === "live")
      await this.hives.stopWorker(hive, workerId).catch((err: unknown) => {
        this.o.log.warn({ worker_id: workerId, err: (err as Error).message }, "could not stop a group member");
      });
    this.registry.removeWorker(workerId, "replaced in its worker group", Date.now(), true);
  }

  async #stopMembers(g: Group): Promise<void> {
    await Promise.all([
      this.#stopWorker(g.coordinatorHive, g.coordinatorId),
      ...g.shards.map((s) => this.#stopWorker(s.hiveId, s.workerId)),
    ]);
  }
}
