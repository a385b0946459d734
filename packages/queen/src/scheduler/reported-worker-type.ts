import type { DeviceKind, InstalledWorkerType, WorkerTypeDescriptor } from "@rbee/contract";
import type { HiveEntry } from "../registry/cluster-registry.js";

const DEFAULT_PACKAGE_MEMORY = 64 * 1024 * 1024;

/**
 * The descriptor of a worker type installed from a package, as the hives report it in their
 * worker catalogs (the queen's registry knows only the built-in types): what it serves and where,
 * and its memory (the manifest's `memory_bytes`, plus the model for a type that loads one). The
 * queen never launches it; the hive does, from the package.
 */
export function reportedWorkerType(id: string, hives: Iterable<HiveEntry>): WorkerTypeDescriptor | undefined {
  let entry: InstalledWorkerType | undefined;
  for (const h of hives) {
    if (h.state === "lost") continue;
    entry = h.workerTypes?.find((t) => t.id === id && t.package !== undefined && t.status === "Available") ?? entry;
    if (entry !== undefined) break;
  }
  if (entry === undefined) return undefined;
  const pkg = entry.package as { memory_bytes?: number; config_schema?: unknown } | undefined;
  const schema = pkg?.config_schema;
  const overhead = pkg?.memory_bytes ?? DEFAULT_PACKAGE_MEMORY;
  const loadsModel = entry.artifact !== "none";
  return {
    id: entry.id,
    description: entry.description,
    capabilities: entry.capabilities,
    deviceKinds: entry.device_kinds as DeviceKind[],
    artifact: entry.artifact,
    defaults: { maxContextSize: 4096, parallel: 2 },
    configSchema:
      typeof schema === "object" && schema !== null && !Array.isArray(schema)
        ? (schema as Record<string, unknown>)
        : undefined,
    estimateMemory: (model, o) => ({
      weights: loadsModel ? model.size_bytes : 0,
      kv_cache: 0,
      compute: 0,
      overhead,
      total: overhead + (loadsModel ? model.size_bytes : 0),
      context_size: o.contextSize ?? 4096,
      parallel: o.parallel ?? 2,
    }),
    launch: () => {
      throw new Error(`worker type '${id}' is launched by the hive that installed its package, not by the queen`);
    },
  };
}
