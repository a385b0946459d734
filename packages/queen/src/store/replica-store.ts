import { join } from "node:path";
import { DeviceId, PlacementPolicy } from "@rbee/contract";
import { z } from "zod";
import { readJsonFile, writeJsonFile } from "./json-file.js";

export const REPLICAS_FILE = "replicas.json";

/** A model the queen keeps at least `replicas` workers of, and how they are spawned. */
export const ReplicaSpec = z.object({
  replicas: z.number().int().min(1),
  policy: PlacementPolicy.optional(),
  hive: z.string().optional(),
  device: DeviceId.optional(),
  ctx_size: z.number().int().optional(),
  parallel: z.number().int().optional(),
  threads: z.number().int().optional(),
  /** The worker type its workers are spawned as (default: the queen's). */
  worker_type: z.string().optional(),
  /** The configuration its workers are spawned with (a package type's). */
  config: z.record(z.string(), z.unknown()).optional(),
});
export type ReplicaSpec = z.infer<typeof ReplicaSpec>;

const ReplicaFile = z.object({ models: z.record(z.string(), ReplicaSpec) });

/**
 * The per-model minimums set with `rbee worker spawn --replicas N`, in `<config>/replicas.json`, so
 * that a restarted queen keeps them. Keys are model ids in lower case.
 */
export class ReplicaStore {
  readonly #file: string;
  #models: Record<string, ReplicaSpec>;

  constructor(configDir: string) {
    this.#file = join(configDir, REPLICAS_FILE);
    this.#models = readJsonFile(this.#file, ReplicaFile, "replica")?.models ?? {};
  }

  get(model: string): ReplicaSpec | undefined {
    return this.#models[model.toLowerCase()];
  }

  entries(): Array<[string, ReplicaSpec]> {
    return Object.entries(this.#models);
  }

  /** Sets a model's minimum; 0 forgets it. */
  set(model: string, spec: ReplicaSpec | undefined): void {
    const next = { ...this.#models };
    if (spec === undefined || spec.replicas === 0) delete next[model.toLowerCase()];
    else next[model.toLowerCase()] = spec;
    this.#models = next;
    writeJsonFile(this.#file, { models: this.#models });
  }
}
