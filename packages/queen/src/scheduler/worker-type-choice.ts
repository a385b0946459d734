import { RbeeError, type WorkerCapability, type WorkerTypeDescriptor } from "@rbee/contract";
import {
  DEFAULT_IMAGE_WORKER_TYPE,
  DEFAULT_TYPE_BY_FORMAT,
  findWorkerType,
  UnknownWorkerTypeError,
  workerTypeIds,
} from "@rbee/worker-types";
import type { ClusterRegistry } from "../registry/cluster-registry.js";
import type { ReplicaStore } from "../store/replica-store.js";
import { reportedWorkerType } from "./reported-worker-type.js";

/**
 * Which worker type a new worker of a model is started as: the one asked for, else its minimum's,
 * else the one its format needs (a Hugging Face repo), else the queen's default; and which types the
 * hives have. It does not decide where the worker goes (placement.ts) nor whether a hive runs the
 * type on a device (placement.ts: hiveRuns).
 */
export class WorkerTypeChoice {
  constructor(
    private readonly registry: ClusterRegistry,
    private readonly o: { replicas: ReplicaStore; defaultWorkerType: string; defaultImageWorkerType?: string },
  ) {}

  /**
   * The worker type a new worker for a model is started as: the one asked for, else the one its
   * minimum was set with, else the queen's default; it must serve `capability`.
   * @throws UnknownWorkerTypeError (400) listing the types the hives have; RbeeError 400
   *   `worker_type_capability` for a type that does not serve what the request needs.
   */
  forModel(model: string, asked: string | undefined, capability?: WorkerCapability): WorkerTypeDescriptor {
    const fallback =
      capability === "image-generation"
        ? (this.o.defaultImageWorkerType ?? DEFAULT_IMAGE_WORKER_TYPE)
        : this.o.defaultWorkerType;
    const id = asked ?? this.o.replicas.get(model)?.worker_type ?? this.#forFormat(model) ?? fallback;
    const type = this.find(id);
    if (type === undefined) throw new UnknownWorkerTypeError(id, this.installed(), "the hives have");
    if (capability !== undefined && !type.capabilities.includes(capability)) {
      throw new RbeeError(
        `worker type '${type.id}' does not serve ${capability} (it serves ${type.capabilities.join(", ")}); choose another type (rbee worker types)`,
        { statusCode: 400, code: "worker_type_capability", param: "worker_type" },
      );
    }
    return type;
  }

  /** A built-in worker type, or one a live hive installed from a package. */
  find(id: string): WorkerTypeDescriptor | undefined {
    return findWorkerType(id) ?? reportedWorkerType(id, this.registry.hives.values());
  }

  /** Worker types installed on at least one live hive (or known to rbee, before any hive reported). */
  installed(): string[] {
    const ids = new Set<string>();
    let reported = false;
    for (const h of this.registry.hives.values()) {
      if (h.state === "lost" || h.workerTypes === undefined) continue;
      reported = true;
      for (const t of h.workerTypes) if (t.status === "Available") ids.add(t.id);
    }
    return reported ? [...ids].sort() : workerTypeIds();
  }

  /**
   * The type for a model a hive holds as a Hugging Face repo (format hf-repo), which only the types
   * that load repos can serve: the default for repos (vllm) when a hive has it, else another such
   * type a hive has, else the default (whose placement then says where it is not installed).
   * Undefined for a GGUF or a model no hive holds yet.
   */
  #forFormat(model: string): string | undefined {
    if (this.registry.findModel(model)[0]?.model.format !== "hf-repo") return undefined;
    const installed = this.installed();
    const fallback = DEFAULT_TYPE_BY_FORMAT["hf-repo"];
    if (installed.includes(fallback)) return fallback;
    return (
      workerTypeIds().find((id) => findWorkerType(id)?.artifact === "hf-repo" && installed.includes(id)) ?? fallback
    );
  }
}
