import type {
  HeartbeatCommand,
  HiveWorkerReport,
  LaunchSpec,
  WorkerExit,
  WorkerHeartbeat,
  WorkerStatus,
} from "@rbee/contract";
import { InvalidTransitionError, type Logger, StateMachine, type TransitionTable } from "@rbee/server-kit";
import { capabilitiesOf } from "@rbee/worker-types";
import type { WorkerProcess } from "./worker-process.js";

/** What a worker was spawned as; it is started again the same way after a crash. */
export interface WorkerSpec {
  workerId: string;
  workerType: string;
  /** The catalog id the worker serves the model under. */
  modelId: string;
  /** The model file; undefined for an adopted worker (the hive did not start it). */
  modelPath?: string;
  device: string;
  ctxSize?: number;
  parallel?: number;
  threads?: number;
  maxQueue?: number;
  /** The queen's keep-alive for the worker (ms, null is forever), kept and reported back. */
  keepAliveMs?: number | null;
  /** The memory the queen reserved for the worker (bytes), kept and reported back. */
  memoryBytes?: number;
  /** How long a start (and every restart) may take; default: the hive's readyTimeoutMs. */
  readyTimeoutMs?: number;
  /** A worker group's member: its group, and a shard's RPC port (kept across restarts). */
  group?: LaunchSpec["group"];
  /** Its configuration (checked against its type's config_schema, defaults filled in): RBEE_WORKER_CONFIG. */
  config?: Record<string, unknown>;
}

/**
 * The hive's supervision of one worker, across its restarts:
 *
 * - `starting`: its first process is starting (POST /v1/workers is waiting);
 * - `running`: ready once (or adopted); its status is then the worker's own (Ready, Busy, Stopping);
 * - `restarting`: it crashed and waits for (or is in) a restart;
 * - `stopping` → `stopped`: a requested stop, or it ended itself; a stopped worker leaves the registry;
 * - `failed`: its first start failed (it leaves the registry), or restarts ran out or an adopted
 *   worker was lost (it stays listed until it is stopped).
 */
export type SupervisionState = "starting" | "running" | "restarting" | "stopping" | "stopped" | "failed";

/**
 * Which supervision state may follow which: every change of a worker's state is one of these, made by
 * {@link ManagedWorker.moveTo}. A worker can always be stopped until it is stopped; `stopped` is final.
 */
export const SUPERVISION_TRANSITIONS: TransitionTable<SupervisionState> = Object.freeze({
  // ready; its start failed; stopped while starting (by request, or its client went away)
  starting: ["running", "failed", "stopping"],
  // crashed (or lost) and restarted later; crashed with no restarts left, or lost while adopted;
  // stopped by request; ended itself (exit code 0, or an adopted worker said Stopped)
  running: ["restarting", "failed", "stopping", "stopped"],
  // a restart that failed waits again; ready again; restarts ran out; stopped by request
  restarting: ["restarting", "running", "failed", "stopping"],
  stopping: ["stopped"],
  stopped: [],
  // removed by request (`rbee worker stop`)
  failed: ["stopping"],
});

/** Where a worker the hive did not start (it found it by its heartbeat) lives. */
export interface AdoptedProcess {
  pid: number | null;
  url: string;
}

/** One worker in the hive's registry: its spec, its current process and what the hive saw of it. */
export class ManagedWorker {
  readonly spec: WorkerSpec;
  port: number;
  readonly #machine: StateMachine<SupervisionState>;
  process: WorkerProcess | undefined;
  adopted: AdoptedProcess | undefined;
  restarts = 0;
  /** When the restarts of the current window happened (for the restart policy). */
  readonly restartTimes: number[] = [];
  lastExit: WorkerExit | null = null;
  heartbeat: WorkerHeartbeat | null = null;
  heartbeatAt: number | null = null;
  /** When the current process became ready (or the worker was adopted). */
  readyAt: number | null = null;
  startedAt = new Date();
  stale = false;
  /** From when this hive could hear the worker again after it was itself not running (see heardFrom). */
  #listeningSince = 0;
  /** Commands for the worker, handed over in the reply to its next heartbeat. */
  readonly commands: HeartbeatCommand[] = [];
  restartTimer: NodeJS.Timeout | undefined;
  /** Why the hive is ending the current process, when it is the hive that ends it. */
  endReason: string | undefined;
  stopping: Promise<HiveWorkerReport> | undefined;

  /** `initial` is `running` for a worker the hive adopts (it runs already), else `starting`. */
  constructor(spec: WorkerSpec, port: number, initial: "starting" | "running" = "starting") {
    this.spec = spec;
    this.port = port;
    this.#machine = new StateMachine(`worker '${spec.workerId}'`, SUPERVISION_TRANSITIONS, initial);
  }

  get state(): SupervisionState {
    return this.#machine.state;
  }

  /**
   * Changes the supervision state; returns the state it left.
   * @throws InvalidTransitionError when {@link SUPERVISION_TRANSITIONS} does not allow it (a bug).
   */
  moveTo(to: SupervisionState): SupervisionState {
    return this.#machine.move(to);
  }

  get id(): string {
    return this.spec.workerId;
  }

  get pid(): number | null {
    return this.process?.pid ?? this.adopted?.pid ?? null;
  }

  /**
   * The status the hive reports. A running worker's status is its own latest word (Ready, Busy or
   * Stopping), from a heartbeat of its current process; otherwise it follows the supervision state.
   */
  status(): WorkerStatus {
    switch (this.state) {
      case "starting":
      case "restarting":
        return "Starting";
      case "stopping":
        return "Stopping";
      case "stopped":
        return "Stopped";
      case "failed":
        return "Failed";
      case "running": {
        const hb = this.heartbeat;
        if (hb === null || (hb.pid !== undefined && this.pid !== null && hb.pid !== this.pid)) return "Ready";
        if (hb.status === "Busy" || hb.status === "Stopping") return hb.status;
        if (this.adopted !== undefined && hb.status === "Starting") return "Starting";
        return "Ready";
      }
    }
  }

  /**
   * Milliseconds since the last heartbeat (or since it became ready, if none came since), counted
   * from no earlier than the last time the hive itself resumed (heardFrom).
   */
  silenceMs(now: number): number {
    return now - Math.max(this.heartbeatAt ?? 0, this.readyAt ?? 0, this.#listeningSince);
  }

  /** The hive was not running until `now`: a silence before it is not the worker's. */
  heardFrom(now: number): void {
    this.#listeningSince = now;
  }

  report(urlOf: (port: number) => string, now = Date.now()): HiveWorkerReport {
    const report: HiveWorkerReport = {
      worker_id: this.id,
      worker_type: this.spec.workerType,
      capabilities: [...(this.heartbeat?.capabilities ?? capabilitiesOf(this.spec.workerType))],
      model: this.spec.modelId,
      device: this.spec.device,
      url: urlOf(this.port),
      port: this.port,
      pid: this.pid,
      status: this.status(),
      restarts: this.restarts,
      last_exit: this.lastExit,
      started_at: this.startedAt.toISOString(),
      heartbeat_age_ms: this.heartbeatAt === null ? null : Math.max(0, now - this.heartbeatAt),
      heartbeat: this.heartbeat,
      stale: this.stale,
      adopted: this.adopted !== undefined,
    };
    if (this.spec.keepAliveMs !== undefined) report.keep_alive_ms = this.spec.keepAliveMs;
    if (this.spec.memoryBytes !== undefined) report.memory_bytes = this.spec.memoryBytes;
    if (this.spec.config !== undefined) report.config = this.spec.config;
    const g = this.spec.group;
    if (g !== undefined) {
      const rpc =
        g.rpc_host === undefined || g.rpc_port === undefined ? undefined : rpcEndpoint(g.rpc_host, g.rpc_port);
      // a coordinator's members and split too: a restarted queen learns the group from them
      const members = g.shards ? { shards: g.shards, tensor_split: g.tensor_split } : {};
      report.group = { group_id: g.group_id, role: g.role, ...(rpc ? { rpc } : {}), ...members };
    }
    return report;
  }
}

/**
 * Moves a worker to `to`, the way the supervisor does: a move the table allows is logged (debug) and
 * returns true. One it does not allow is a bug in the hive: logged as an error with the stack that
 * asked for it, and refused (false), or thrown when `strict` (the tests run hives strict).
 */
export function moveWorker(w: ManagedWorker, to: SupervisionState, log: Logger, strict: boolean): boolean {
  let from: SupervisionState;
  try {
    from = w.moveTo(to);
  } catch (err) {
    if (!(err instanceof InvalidTransitionError)) throw err;
    log.error(
      { worker_id: w.id, from: err.from, to: err.to, stack: err.stack },
      "BUG: invalid change of a worker's supervision state; refused (please report it)",
    );
    if (strict) throw err;
    return false;
  }
  log.debug({ worker_id: w.id, from, to }, "worker supervision state");
  return true;
}

/** `host:port` of an RPC server, with an IPv6 host in brackets. */
export function rpcEndpoint(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}
