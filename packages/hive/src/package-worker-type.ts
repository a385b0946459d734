import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  type InstalledPackageInfo,
  type WorkerPackageManifest,
  type WorkerTypeDescriptor,
  workerLaunchEnv,
} from "@rbee/contract";

const DEFAULT_MEMORY = 64 * 1024 * 1024;

/** A worker type installed from a package: a descriptor, and what the hive knows of the package. */
export interface PackageWorkerType extends WorkerTypeDescriptor {
  readonly package: InstalledPackageInfo;
  /** The directory the package's current version was extracted to. */
  readonly dir: string;
}

/**
 * The worker type of an installed package, next to the built-in registry: launched as
 * `node <package dir>/<entry>` with the environment every worker gets (workerLaunchEnv) plus
 * `RBEE_WORKER_TYPE` (and `RBEE_ENGINE_PATH` for a package that needs an engine); its memory is
 * the manifest's `memory_bytes`.
 */
export function packageWorkerType(
  manifest: WorkerPackageManifest,
  dir: string,
  info: InstalledPackageInfo,
): PackageWorkerType {
  const entry = join(dir, manifest.entry);
  const memory = manifest.memory_bytes ?? DEFAULT_MEMORY;
  return Object.freeze<PackageWorkerType>({
    id: manifest.id,
    description: manifest.description,
    capabilities: Object.freeze([...manifest.capabilities]),
    deviceKinds: Object.freeze([...manifest.device_kinds]),
    artifact: manifest.artifact,
    engine: manifest.engine,
    defaults: Object.freeze({ maxContextSize: 4096, parallel: 2 }),
    readyTimeoutMs: manifest.ready_timeout_ms,
    configSchema: manifest.config_schema,
    estimateMemory: (model, o) => ({
      weights: manifest.artifact === "none" ? 0 : model.size_bytes,
      kv_cache: 0,
      compute: 0,
      overhead: memory,
      total: memory + (manifest.artifact === "none" ? 0 : model.size_bytes),
      context_size: o.contextSize ?? 4096,
      parallel: o.parallel ?? 2,
    }),
    launch: (spec, ctx) => {
      const engine = manifest.engine === undefined ? undefined : spec.engines[manifest.engine];
      return {
        command: ctx.node,
        args: [entry],
        env: {
          ...workerLaunchEnv(spec, ctx),
          RBEE_WORKER_TYPE: manifest.id,
          // the binary of the engine it needs, as the hive found it on this machine
          ...(engine === undefined ? {} : { RBEE_ENGINE_PATH: engine }),
        },
      };
    },
    bundledEngines:
      manifest.engine === undefined
        ? () => [
            existsSync(entry)
              ? {
                  id: `${manifest.id}@${manifest.version}`,
                  path: entry,
                  source: "bundled",
                  status: "ok",
                  version: manifest.version,
                }
              : {
                  id: `${manifest.id}@${manifest.version}`,
                  path: entry,
                  source: "bundled",
                  status: "broken",
                  error: `${entry} is missing; reinstall with \`rbee worker install ${manifest.id}\``,
                },
          ]
        : undefined,
    // the queen learns the schema from the catalog in the heartbeats, and checks a spawn's config early
    package: manifest.config_schema === undefined ? info : { ...info, config_schema: manifest.config_schema },
    dir,
  });
}
