import type { Device, InferRequest, WorkerCapability, WorkerHeartbeat } from "@rbee/contract";
import { RbeeError } from "@rbee/contract";
import { isWildcardHost } from "@rbee/server-kit";
import {
  type EngineGuard,
  EngineProcess,
  type InferResult,
  type LoadContext,
  type LoadedModel,
  processRss,
  type WorkerEngine,
} from "@rbee/worker-kit";

/** What to do when there is no ggml-rpc-server, in every message that says so. */
export const RPC_SERVER_HINT =
  "build it with `rbee engine build llama.cpp` (it builds ggml-rpc-server beside llama-server), or register yours with `rbee engine add ggml-rpc-server <path>`";

export interface RpcShardEngineOptions {
  /** The ggml-rpc-server binary. */
  binary: string;
  /** The model its group serves (reported in heartbeats; a shard loads nothing itself). */
  modelId: string;
  device: Device;
  groupId: string;
  /** Where the RPC server listens: loopback, or the one address the queen reaches this machine at. */
  rpcHost: string;
  rpcPort: number;
  threads?: number;
  startTimeoutMs?: number;
  guard?: EngineGuard;
}

/**
 * One shard of a worker group: llama.cpp's `ggml-rpc-server`, lending this worker's device to the
 * group's coordinator (`llama-server --rpc ...`), started and watched like any adapter's engine.
 * It serves no requests itself; its heartbeat says which group it belongs to and where its RPC
 * server is. When the RPC server dies the worker exits non-zero, and its hive restarts it on the
 * same address, so the coordinator finds it again.
 */
export class RpcShardEngine implements WorkerEngine {
  readonly workerType = "rpc-shard";
  readonly implementation = "ggml-rpc-server";
  readonly version = "unknown";
  readonly capabilities: readonly WorkerCapability[] = [];
  #o: RpcShardEngineOptions;
  #process: EngineProcess | undefined;

  constructor(options: RpcShardEngineOptions) {
    if (isWildcardHost(options.rpcHost))
      throw new RbeeError(
        `a shard's RPC server may not bind '${options.rpcHost}': llama.cpp's RPC has no authentication; bind loopback, or the one address the queen reaches this machine at`,
        { statusCode: 400, code: "invalid_request", param: "rpc_host" },
      );
    this.#o = options;
  }

  /** The RPC server's address, `host:port`, as the coordinator dials it. */
  get endpoint(): string {
    const h = this.#o.rpcHost.includes(":") ? `[${this.#o.rpcHost}]` : this.#o.rpcHost;
    return `${h}:${this.#o.rpcPort}`;
  }

  get engineProcess(): EngineProcess | undefined {
    return this.#process;
  }

  async load(ctx: LoadContext): Promise<LoadedModel> {
    const threads = String(this.#o.threads ?? 1);
    const args = ["--host", this.#o.rpcHost, "--port", String(this.#o.rpcPort), "--threads", threads];
    this.#process = new EngineProcess({
      name: "ggml-rpc-server",
      binary: this.#o.binary,
      args,
      binaryHint: RPC_SERVER_HINT,
      readyUrl: `tcp://${this.endpoint}`,
      startTimeoutMs: this.#o.startTimeoutMs ?? 30_000,
      guard: this.#o.guard,
      log: ctx.log.child({ component: "engine" }),
      onUnexpectedExit: (error) => ctx.fail(error),
    });
    await this.#process.start(ctx.signal);
    ctx.log.info({ engine: "ggml-rpc-server", rpc: this.endpoint, group_id: this.#o.groupId }, "shard serving");
    return { modelId: this.#o.modelId, slots: 1 };
  }

  infer(_request: InferRequest): Promise<InferResult> {
    return Promise.reject(
      new RbeeError(
        `this worker is a shard of worker group ${this.#o.groupId}: it serves no requests; send them to the group's coordinator (through the queen)`,
        { statusCode: 400, code: "invalid_request" },
      ),
    );
  }

  memory(): { used: number; total: number } {
    const pid = this.#process?.pid;
    return { used: processRss(pid), total: this.#o.device.memory_total };
  }

  heartbeatExtras(): Partial<WorkerHeartbeat> {
    return {
      group_id: this.#o.groupId,
      role: "shard",
      rpc_endpoint: this.endpoint,
      engine_pid: this.#process?.pid,
    };
  }

  async dispose(): Promise<void> {
    await this.#process?.stop();
  }
}
