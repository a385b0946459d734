import { rmSync } from "node:fs";
import {
  type HeartbeatCommand,
  type HiveWorkerReport,
  type LaunchCommand,
  type LaunchContext,
  SafeId,
  ShuttingDownError,
  type WorkerHeartbeat,
  type WorkerStatus,
} from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import { isPidAlive } from "@rbee/server-kit";
import { isWorkerProcess, looksLikeWorker, stopAdoptedProcess } from "./adopted-process.js";
import { WorkerExistsError, WorkerNotFoundError, WorkerStartError, WorkerStoppedError } from "./errors.js";
import { type ExitInfo, toWorkerExit } from "./exit-reason.js";
import type { HiveMetrics } from "./hive-metrics.js";
import { ManagedWorker, moveWorker, type SupervisionState, type WorkerSpec } from "./managed-worker.js";
import type { PortAllocator } from "./port-allocator.js";
import type { RestartPolicy } from "./restart-policy.js";
import { SpareWorker, type StartedSpare } from "./spare-worker.js";
import { workerLogPath } from "./worker-log-file.js";
import { WorkerProcess } from "./worker-process.js";
import type { WorkerRecords } from "./worker-records.js";

/** A worker silent for this many heartbeat intervals is stale (reported, not routed to). */
export const STALE_INTERVALS = 3;
/** A worker silent for this many intervals is lost: killed and treated as a crash. */
export const LOST_INTERVALS = 6;
/** How long a stopped worker's id is remembered, so its late heartbeats are not adopted. */
const TOMBSTONE_MS = 10 * 60_000;
/** Spawn attempts when the port is taken between the probe and the worker's bind. */
const PORT_ATTEMPTS = 3;
/** Statuses in which a heartbeat from an unknown worker gets it adopted. */
const ADOPTABLE: readonly WorkerStatus[] = ["Starting", "Ready", "Busy"];

export interface WorkerSupervisorOptions {
  log: Logger;
  metrics: HiveMetrics;
  token: string;
  ports: PortAllocator;
  restartPolicy: RestartPolicy;
  logsDir: string;
  /** The node binary and the rbee CLI entry that workers are started with. */
  node: string;
  rbeeBin: string;
  /**
   * The process for a worker, from its type's descriptor and the engines this machine has, looked
   * up at every start (a restart picks up an engine rebuilt meanwhile).
   * @throws RbeeError when the type or its engine is not installed here.
   */
  launch: (spec: WorkerSpec, ctx: LaunchContext) => Promise<LaunchCommand>;
  /** The workers' environment (the cluster token is added). */
  env: NodeJS.ProcessEnv;
  /** The address workers listen on, and the one the hive reaches them at on this machine. */
  workerHost: string;
  localHost: string;
  /** "https" when the workers serve TLS (they get the hive's certificate), else "http". */
  scheme: "http" | "https";
  /** The hive's URL as its workers reach it (their heartbeat URL). */
  heartbeatUrl: () => string;
  /** A worker's URL as the queen reaches it. */
  workerUrl: (port: number) => string;
  heartbeatIntervalMs: number;
  orphanTimeoutMs: number;
  workerShutdownGraceMs: number;
  /** SIGTERM → SIGKILL grace when the hive stops a worker. */
  stopGraceMs: number;
  readyTimeoutMs: number;
  /** Where running workers are remembered, for a hive started after this one dies. */
  records: WorkerRecords;
  /**
   * Called after every change a queen should hear about: `urgent` for a worker added, removed,
   * crashed, restarted, stale...; not for a worker turning Busy or Ready again (load changes).
   */
  onChange: (urgent: boolean) => void;
  /** A worker failed to start (or to restart): the hive looks at its model file again. */
  onStartFailed?: (spec: WorkerSpec) => void;
  /** Keep a spare llm worker process ready for the next CPU worker (see SpareWorker). */
  spareWorker?: boolean;
  /** A spare started before the hive: the first one (or stopped, when spares are off). */
  firstSpare?: StartedSpare;
  /** An invalid change of a worker's state throws instead of being logged and refused (tests). */
  strictStates?: boolean;
}

export interface SpawnOptions {
  readyTimeoutMs: number;
  /** Aborted when the client that asked for the spawn goes away: the worker is stopped then. */
  signal?: AbortSignal;
}

/**
 * The hive's workers: spawns them and waits for them to be ready, restarts the ones that crash
 * (with backoff, until the restart policy gives up: Failed), kills the ones whose heartbeats stop,
 * stops them on request, and adopts running workers it did not start when they heartbeat to it.
 * Running workers are remembered on disk, so that a hive restarted after a crash takes them back
 * before its first heartbeat to the queen (see {@link recover}).
 */
export class WorkerSupervisor {
  readonly #o: WorkerSupervisorOptions;
  readonly #workers = new Map<string, ManagedWorker>();
  readonly #tombstones = new Map<string, number>();
  readonly #refused = new Set<string>();
  readonly #workerEnv: NodeJS.ProcessEnv;
  #closing = false;
  #watch: NodeJS.Timeout | undefined;
  #watchEveryMs = 1000;
  /** When the heartbeat watch last ran: a long gap means this hive itself was not running. */
  #lastCheckAt: number | undefined;

  readonly #spare: SpareWorker | undefined;

  constructor(options: WorkerSupervisorOptions) {
    this.#o = options;
    this.#workerEnv = { ...options.env, RBEE_CLUSTER_TOKEN: options.token };
    if (options.spareWorker) {
      const { node, rbeeBin, logsDir, log, firstSpare: first } = options;
      this.#spare = new SpareWorker({ node, rbeeBin, logsDir, log, env: this.#workerEnv, first });
    } else if (options.firstSpare) {
      options.firstSpare.child.kill("SIGTERM");
      rmSync(options.firstSpare.logFile, { force: true });
    }
  }

  /** Starts watching heartbeats (staleness, lost workers, adopted workers that are gone). */
  start(): void {
    const every = Math.max(50, Math.min(1000, this.#o.heartbeatIntervalMs / 2));
    this.#watchEveryMs = every;
    this.#lastCheckAt = Date.now();
    this.#watch = setInterval(() => this.checkHeartbeats(), every);
    this.#watch.unref();
    this.#spare?.start();
  }

  /**
   * Takes back the workers an earlier hive left running (from their records): each whose process
   * is still there is adopted with everything the earlier hive knew (model file, keep-alive,
   * restarts), so that the queen's view of it does not change and it is restarted if it crashes
   * later. Records of workers that are gone are dropped. Call before the first heartbeat to the queen.
   */
  recover(): void {
    for (const saved of this.#o.records.load()) {
      const id = saved.spec.workerId;
      if (this.#workers.has(id)) continue;
      if (saved.pid === null || !isWorkerProcess(saved.pid, id)) {
        this.#o.log.info({ worker_id: id, pid: saved.pid }, "a worker of an earlier hive is gone; forgetting it");
        this.#o.records.remove(id);
        continue;
      }
      const w = new ManagedWorker(saved.spec, saved.port, "running");
      w.adopted = { pid: saved.pid, url: saved.url };
      w.readyAt = Date.now();
      w.restarts = saved.restarts;
      w.startedAt = saved.startedAt;
      this.#o.ports.hold(saved.port);
      this.#workers.set(id, w);
      this.#o.metrics.adopted.inc();
      this.#o.log.info(
        { worker_id: id, pid: saved.pid, url: saved.url, model: saved.spec.modelId },
        "adopted a running worker of an earlier hive (from its record)",
      );
    }
  }

  /** Sets the keep-alive the queen asked for (reported back, and kept for a restarted hive or queen). */
  setKeepAlive(id: string, keepAliveMs: number | null): void {
    const w = this.#workers.get(id);
    if (w === undefined || w.spec.keepAliveMs === keepAliveMs) return;
    w.spec.keepAliveMs = keepAliveMs;
    this.#save(w);
    this.#changed();
  }

  get(id: string): ManagedWorker | undefined {
    return this.#workers.get(id);
  }

  has(id: string): boolean {
    return this.#workers.has(id);
  }

  /** The pid of the spare llm worker process waiting for a model, if one waits. */
  sparePid(): number | undefined {
    return this.#spare?.pid;
  }

  reports(): HiveWorkerReport[] {
    const now = Date.now();
    return [...this.#workers.values()].map((w) => w.report(this.#o.workerUrl, now));
  }

  /**
   * Starts a worker and resolves its report once it is ready.
   * @throws WorkerExistsError (409); WorkerStartError (500, or 504 on timeout) when it died or was
   *   not ready in time (it is stopped and forgotten then); WorkerStoppedError (409) when it was
   *   stopped meanwhile; ShuttingDownError (503) when the hive is stopping; the signal's reason
   *   when the client went away (the worker is stopped).
   */
  async spawn(spec: WorkerSpec, o: SpawnOptions): Promise<HiveWorkerReport> {
    this.#assertOpen();
    if (this.#workers.has(spec.workerId)) throw new WorkerExistsError(spec.workerId);
    const port = await this.#o.ports.allocate();
    if (this.#closing || this.#workers.has(spec.workerId)) {
      this.#o.ports.release(port);
      this.#assertOpen();
      throw new WorkerExistsError(spec.workerId);
    }
    const w = new ManagedWorker(spec, port);
    this.#workers.set(w.id, w);
    this.#tombstones.delete(w.id);
    const t0 = performance.now();
    this.#o.log.info(
      { worker_id: w.id, worker_type: spec.workerType, model: spec.modelId, device: spec.device, port },
      "spawning worker",
    );
    this.#changed();
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#launch(w, o.readyTimeoutMs, o.signal);
          break;
        } catch (err) {
          const retry = err instanceof WorkerStartError && err.portInUse && w.state === "starting";
          if (!retry || attempt >= PORT_ATTEMPTS || o.signal?.aborted) throw err;
          const next = await this.#o.ports.allocate();
          this.#o.log.warn({ worker_id: w.id, port: w.port, next_port: next }, "worker port was taken; trying another");
          this.#o.ports.release(w.port);
          w.port = next;
        }
      }
    } catch (err) {
      throw await this.#failedStart(w, err, o.signal);
    }
    if (w.state !== "starting") throw await this.#failedStart(w, new Error("stopped while starting"), o.signal);
    this.#moveTo(w, "running");
    w.readyAt = Date.now();
    this.#o.metrics.spawns.inc({ outcome: "ready" });
    this.#save(w);
    this.#o.log.info(
      { worker_id: w.id, pid: w.pid, url: this.#o.workerUrl(w.port), start_ms: Math.round(performance.now() - t0) },
      "worker ready",
    );
    return w.report(this.#o.workerUrl);
  }

  /**
   * Stops a worker (SIGTERM, then SIGKILL after the grace period; an adopted one through its
   * /v1/shutdown) and forgets it; resolves its last report (status Stopped). Idempotent.
   * @throws WorkerNotFoundError (404).
   */
  stop(id: string, reason = "stopped by request"): Promise<HiveWorkerReport> {
    const w = this.#workers.get(id);
    if (w === undefined) throw new WorkerNotFoundError(id);
    w.stopping ??= this.#stop(w, reason);
    return w.stopping;
  }

  /** Refuses new spawns and stops every worker (for the hive's shutdown). */
  async stopAll(reason: string): Promise<void> {
    this.#closing = true;
    this.#spare?.close();
    const all = [...this.#workers.values()];
    await Promise.all(all.map((w) => this.stop(w.id, reason).catch(() => undefined)));
  }

  /** Stops the heartbeat watch and pending restarts (the workers themselves are left alone). */
  dispose(): void {
    this.#closing = true;
    this.#spare?.close();
    clearInterval(this.#watch);
    for (const w of this.#workers.values()) clearTimeout(w.restartTimer);
  }

  /**
   * Takes a worker's heartbeat and answers the commands queued for it. A heartbeat from a worker
   * this hive does not know, but which is running, adopts it; one from a worker this hive stopped,
   * or from a second process claiming a worker's id, is answered with a shutdown command.
   */
  receiveHeartbeat(hb: WorkerHeartbeat): HeartbeatCommand[] {
    this.#o.metrics.workerHeartbeats.inc();
    const w = this.#workers.get(hb.worker_id);
    if (w === undefined) return this.#unknownHeartbeat(hb);
    const pid = w.process?.pid;
    if (pid !== undefined && hb.pid !== undefined && hb.pid !== pid) {
      this.#o.log.warn({ worker_id: w.id, pid, other_pid: hb.pid }, "a second process claims a worker's id");
      return [{ type: "shutdown", reason: `worker id '${w.id}' belongs to process ${pid} of this hive` }];
    }
    const before = w.status();
    const wasStale = w.stale;
    w.heartbeat = hb;
    w.heartbeatAt = Date.now();
    w.stale = false;
    if (w.adopted !== undefined) {
      if (hb.pid !== undefined) w.adopted.pid = hb.pid;
      if (hb.url !== undefined) w.adopted.url = hb.url;
      if (hb.status === "Stopped" && w.state === "running") {
        this.#o.log.info({ worker_id: w.id }, "adopted worker stopped");
        this.#moveTo(w, "stopped");
        this.#remove(w);
        return [];
      }
    }
    const after = w.status();
    const flip = (before === "Ready" && after === "Busy") || (before === "Busy" && after === "Ready");
    if (wasStale || (before !== after && !flip)) this.#changed();
    else if (flip) this.#o.onChange(false);
    return w.commands.splice(0);
  }

  /**
   * Marks silent workers stale, kills lost ones, and notices adopted workers whose process is gone.
   *
   * Silence is counted only over time this hive could have heard a heartbeat: when the watch itself
   * ran late by more than a heartbeat interval (the hive was frozen with SIGSTOP, suspended with its
   * machine, or its event loop was blocked), every worker's silence starts again from now. Workers
   * retry their heartbeats; a worker that is really gone is still found lost 6 intervals later.
   */
  checkHeartbeats(now = Date.now()): void {
    const interval = this.#o.heartbeatIntervalMs;
    const gap = this.#lastCheckAt === undefined ? 0 : now - this.#lastCheckAt;
    this.#lastCheckAt = now;
    if (gap > this.#watchEveryMs + Math.max(interval, 1000)) {
      this.#o.log.warn(
        { stalled_ms: gap - this.#watchEveryMs, workers: this.#workers.size },
        "this hive was not running (frozen, suspended or blocked); workers' silence is counted again from now",
      );
      for (const w of this.#workers.values()) w.heardFrom(now);
    }
    for (const w of this.#workers.values()) {
      if (w.state !== "running") continue;
      const adoptedPid = w.adopted?.pid;
      if (adoptedPid !== undefined && adoptedPid !== null && !isPidAlive(adoptedPid)) {
        this.#adoptedGone(w);
        continue;
      }
      const silence = w.silenceMs(now);
      const stale = silence > STALE_INTERVALS * interval;
      if (stale !== w.stale) {
        w.stale = stale;
        if (stale)
          this.#o.log.warn({ worker_id: w.id, silence_ms: silence }, "worker is stale: no heartbeat for 3 intervals");
        this.#changed();
      }
      if (silence > LOST_INTERVALS * interval && w.endReason === undefined) this.#lost(w, silence);
    }
  }

  /** Spawns the worker's process and waits until it is ready. */
  async #launch(w: ManagedWorker, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const o = this.#o;
    const launch = await o.launch(w.spec, {
      node: o.node,
      rbeeBin: o.rbeeBin,
      port: w.port,
      host: o.workerHost,
      heartbeatUrl: o.heartbeatUrl(),
      heartbeatIntervalMs: o.heartbeatIntervalMs,
      orphanTimeoutMs: o.orphanTimeoutMs,
      shutdownGraceMs: o.workerShutdownGraceMs,
    });
    const logFile = workerLogPath(o.logsDir, w.id);
    const p = new WorkerProcess({
      workerId: w.id,
      command: launch.command,
      args: launch.args,
      env: launch.env ? { ...this.#workerEnv, ...launch.env } : this.#workerEnv,
      logFile,
      localUrl: this.#localUrl(w.port),
      token: o.token,
      spare: this.#spare?.take(launch, logFile),
    });
    w.process = p;
    w.adopted = undefined;
    w.endReason = undefined;
    w.startedAt = p.startedAt;
    w.stale = false;
    w.heartbeat = null;
    w.heartbeatAt = null;
    void p.exited.then((exit) => this.#onExit(w, p, exit));
    this.#changed();
    try {
      await p.waitReady(timeoutMs, signal);
    } catch (err) {
      if (w.state === "starting" || w.state === "restarting") {
        w.endReason ??= signal?.aborted ? "the spawn request was cancelled" : "it did not become ready";
        await p.stop(o.stopGraceMs);
      }
      throw err;
    }
  }

  /** Turns a failed first start into the error for the spawn request, and cleans up after it. */
  async #failedStart(w: ManagedWorker, err: unknown, signal?: AbortSignal): Promise<unknown> {
    const { log, metrics } = this.#o;
    if (w.state === "stopping" || w.state === "stopped") {
      metrics.spawns.inc({ outcome: "cancelled" });
      await w.stopping;
      if (this.#closing) return new ShuttingDownError("this hive");
      return new WorkerStoppedError(w.id, w.lastExit?.reason ?? "stopped by request");
    }
    if (signal?.aborted) {
      metrics.spawns.inc({ outcome: "cancelled" });
      log.info({ worker_id: w.id }, "the client that asked for the worker went away; stopping it");
      await this.stop(w.id, "the spawn request was cancelled");
      return signal.reason ?? err;
    }
    metrics.spawns.inc({ outcome: "failed" });
    log.warn({ worker_id: w.id, err: err instanceof Error ? err.message : String(err) }, "worker failed to start");
    this.#o.onStartFailed?.(w.spec);
    await w.process?.stop(this.#o.stopGraceMs);
    // a stop asked for meanwhile ends the worker itself (stopping → stopped)
    if (w.state === "starting") {
      this.#moveTo(w, "failed");
      this.#remove(w);
    }
    return err;
  }

  #onExit(w: ManagedWorker, p: WorkerProcess, exit: ExitInfo): void {
    if (w.process !== p) return;
    w.process = undefined;
    w.lastExit = toWorkerExit(exit, w.endReason);
    const facts = { worker_id: w.id, pid: p.pid, state: w.state, reason: w.lastExit.reason };
    if (w.state === "running") {
      if (exit.code === 0 && w.endReason === undefined) {
        // it stopped itself on purpose (SIGTERM from someone, a shutdown command, its orphan rule)
        this.#o.log.info(facts, "worker stopped on its own");
        this.#moveTo(w, "stopped");
        this.#remove(w);
        return;
      }
      this.#o.metrics.crashes.inc();
      this.#o.log.warn(facts, "worker crashed");
      this.#scheduleRestart(w);
      return;
    }
    if (w.state === "restarting") {
      this.#o.metrics.crashes.inc();
      this.#o.onStartFailed?.(w.spec); // it died while restarting: loading its model, most likely
    }
    this.#o.log.info(facts, "worker process exited");
    this.#changed();
  }

  #scheduleRestart(w: ManagedWorker): void {
    if (this.#closing) return;
    const decision = this.#o.restartPolicy.next(w.restartTimes);
    if (!decision.restart) {
      this.#moveTo(w, "failed");
      this.#o.ports.release(w.port);
      this.#o.records.remove(w.id); // nothing runs any more that a later hive could take back
      this.#o.log.error(
        { worker_id: w.id, restarts: w.restarts, restarts_in_window: decision.restartsInWindow, last_exit: w.lastExit },
        "worker failed: restarts ran out; it stays listed as Failed until it is stopped",
      );
      return;
    }
    this.#moveTo(w, "restarting");
    this.#o.log.info({ worker_id: w.id, delay_ms: decision.delayMs, restarts: w.restarts }, "restarting worker");
    w.restartTimer = setTimeout(() => void this.#restart(w), decision.delayMs);
    w.restartTimer.unref();
  }

  async #restart(w: ManagedWorker): Promise<void> {
    w.restartTimer = undefined;
    if (w.state !== "restarting" || this.#closing) return;
    w.restartTimes.push(Date.now());
    w.restarts++;
    this.#o.metrics.restarts.inc();
    try {
      if (!(await this.#o.ports.isFree(w.port))) {
        const next = await this.#o.ports.allocate();
        this.#o.ports.release(w.port);
        w.port = next;
      }
      if (w.state !== "restarting") return;
      await this.#launch(w, w.spec.readyTimeoutMs ?? this.#o.readyTimeoutMs);
    } catch (err) {
      if (w.state !== "restarting") return;
      this.#o.log.warn({ worker_id: w.id, err: err instanceof Error ? err.message : String(err) }, "restart failed");
      this.#o.onStartFailed?.(w.spec);
      this.#scheduleRestart(w);
      return;
    }
    if (w.state !== "restarting") return;
    this.#moveTo(w, "running");
    w.readyAt = Date.now();
    this.#save(w);
    this.#o.log.info({ worker_id: w.id, pid: w.pid, port: w.port, restarts: w.restarts }, "worker restarted");
  }

  async #stop(w: ManagedWorker, reason: string): Promise<HiveWorkerReport> {
    clearTimeout(w.restartTimer);
    this.#moveTo(w, "stopping");
    w.endReason = reason;
    this.#o.log.info({ worker_id: w.id, pid: w.pid, reason }, "stopping worker");
    if (w.process !== undefined) {
      await w.process.stop(this.#o.stopGraceMs);
    } else if (w.adopted !== undefined) {
      const how = await stopAdoptedProcess(w.adopted.url, w.adopted.pid, this.#o.token, this.#o.stopGraceMs);
      w.lastExit = { code: null, signal: null, at: new Date().toISOString(), reason: `${reason} (${how})` };
    }
    this.#moveTo(w, "stopped");
    this.#remove(w);
    this.#o.log.info({ worker_id: w.id, last_exit: w.lastExit }, "worker stopped");
    return w.report(this.#o.workerUrl);
  }

  #unknownHeartbeat(hb: WorkerHeartbeat): HeartbeatCommand[] {
    const id = hb.worker_id;
    const running = ADOPTABLE.includes(hb.status);
    if (this.#tombstones.has(id)) {
      return running ? [{ type: "shutdown", reason: `this hive stopped worker '${id}'` }] : [];
    }
    if (this.#closing || !running) return [];
    const port = hb.port ?? portOf(hb.url);
    if (!SafeId.safeParse(id).success || port === undefined) {
      if (!this.#refused.has(id)) {
        this.#refused.add(id);
        this.#o.log.warn(
          { worker_id: id },
          "not adopting a worker: its id is not a safe id, or its heartbeat names neither url nor port",
        );
      }
      return [];
    }
    const w = new ManagedWorker(
      { workerId: id, workerType: hb.worker_type ?? "unknown", modelId: hb.model, device: hb.device },
      port,
      "running",
    );
    const now = Date.now();
    w.adopted = { pid: hb.pid ?? null, url: hb.url ?? `${this.#o.scheme}://${this.#o.localHost}:${port}` };
    w.readyAt = now;
    w.heartbeat = hb;
    w.heartbeatAt = now;
    w.startedAt = new Date(now - hb.uptime_seconds * 1000);
    this.#o.ports.hold(port);
    this.#workers.set(id, w);
    this.#o.metrics.adopted.inc();
    this.#save(w);
    this.#o.log.info(
      { worker_id: id, pid: w.pid, url: w.adopted.url, model: hb.model },
      "adopted a running worker this hive did not start (it outlived an earlier hive?)",
    );
    this.#changed();
    return [];
  }

  #lost(w: ManagedWorker, silenceMs: number): void {
    this.#o.metrics.lost.inc();
    const reason = `no heartbeat for ${(silenceMs / 1000).toFixed(1)} s; killed by the hive`;
    this.#o.log.error({ worker_id: w.id, pid: w.pid, silence_ms: silenceMs }, "worker lost: killing it");
    if (w.process !== undefined) {
      w.endReason = reason;
      w.process.kill("SIGKILL");
      return;
    }
    const pid = w.adopted?.pid ?? null;
    if (pid !== null && isPidAlive(pid) && looksLikeWorker(pid)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    this.#moveTo(w, "failed");
    w.lastExit = {
      code: null,
      signal: pid === null ? null : "SIGKILL",
      at: new Date().toISOString(),
      reason: `${reason} (an adopted worker is not restarted)`,
    };
    this.#o.ports.release(w.port);
  }

  #adoptedGone(w: ManagedWorker): void {
    const last = w.heartbeat?.status;
    if (last === "Stopping" || last === "Stopped") {
      this.#moveTo(w, "stopped");
      this.#remove(w);
    } else if (w.spec.modelPath !== undefined) {
      // taken back from its record: the hive knows how to start it, so it is a crash like any other
      this.#o.metrics.crashes.inc();
      w.adopted = undefined;
      w.lastExit = {
        code: null,
        signal: null,
        at: new Date().toISOString(),
        reason: "its process is gone (it outlived an earlier hive: exit code unknown)",
      };
      this.#o.log.warn({ worker_id: w.id, reason: w.lastExit.reason }, "worker crashed");
      this.#scheduleRestart(w);
      return;
    } else {
      this.#o.metrics.crashes.inc();
      this.#moveTo(w, "failed");
      w.lastExit = {
        code: null,
        signal: null,
        at: new Date().toISOString(),
        reason: "its process is gone (an adopted worker: exit code unknown, not restarted)",
      };
      this.#o.ports.release(w.port);
    }
    this.#o.log.warn({ worker_id: w.id, status: w.status() }, "adopted worker's process is gone");
  }

  /** Where the hive reaches a worker on this machine. */
  #localUrl(port: number): string {
    const host = this.#o.localHost;
    return `${this.#o.scheme}://${host.includes(":") ? `[${host}]` : host}:${port}`;
  }

  #save(w: ManagedWorker): void {
    this.#o.records.save({
      spec: w.spec,
      port: w.port,
      pid: w.pid,
      url: w.adopted?.url ?? this.#localUrl(w.port),
      restarts: w.restarts,
      startedAt: w.startedAt,
    });
  }

  #remove(w: ManagedWorker): void {
    if (this.#workers.get(w.id) === w) {
      this.#workers.delete(w.id);
      this.#o.records.remove(w.id);
    }
    this.#o.ports.release(w.port);
    const now = Date.now();
    this.#tombstones.set(w.id, now);
    for (const [id, at] of this.#tombstones) if (at < now - TOMBSTONE_MS) this.#tombstones.delete(id);
  }

  #assertOpen(): void {
    if (this.#closing) throw new ShuttingDownError("this hive");
  }

  /**
   * The one place a worker's supervision state changes: guarded by SUPERVISION_TRANSITIONS (see
   * moveWorker), and reported to the queen with the next heartbeat, as every state change is.
   */
  #moveTo(w: ManagedWorker, to: SupervisionState): boolean {
    if (!moveWorker(w, to, this.#o.log, this.#o.strictStates === true)) return false;
    this.#changed();
    return true;
  }

  #changed(): void {
    this.#o.onChange(true);
  }
}

function portOf(url: string | undefined): number | undefined {
  if (url === undefined) return undefined;
  try {
    const port = Number(new URL(url).port);
    return port > 0 ? port : undefined;
  } catch {
    return undefined;
  }
}
