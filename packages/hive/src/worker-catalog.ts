import { join } from "node:path";
import { writeMetadataFile } from "@rbee/catalog";
import {
  type Device,
  type DeviceKind,
  type EngineBinary,
  type InstalledWorkerType,
  RbeeError,
  type WorkerTypeDescriptor,
} from "@rbee/contract";
import type { Logger } from "@rbee/server-kit";
import { UnknownWorkerTypeError, WORKER_TYPES } from "@rbee/worker-types";

/** How long a listing of the machine's engines is trusted before it is taken again. */
const REFRESH_MS = 60_000;

export interface WorkerCatalogOptions {
  /** `<cache>/workers`: one `<type-id>/metadata.json` per worker type. */
  dir: string;
  /** The engine binaries on this machine (rbee-built, added by hand, on PATH). Never throws. */
  findEngines: () => Promise<EngineBinary[]>;
  /** The types to list (default: the registry). */
  types?: Readonly<Record<string, WorkerTypeDescriptor>>;
  /** Types installed from worker packages, listed after the built-in ones (read at every refresh). */
  installed?: () => Readonly<Record<string, WorkerTypeDescriptor & { package?: unknown }>>;
  log: Logger;
  version: string;
}

/** A type resolved for a spawn: its descriptor and the engine binaries it starts with. */
export interface ResolvedWorkerType {
  descriptor: WorkerTypeDescriptor;
  engines: Record<string, string>;
}

/**
 * The hive's worker catalog: every worker type of the registry, with what it runs with on this
 * machine (the llm worker's bundled llama.cpp builds, each engine binary with its version and path)
 * and whether it can run here. Written to `<cache>/workers/<type-id>/metadata.json` in the catalog
 * format, reported in the hive's heartbeat and at `GET /v1/worker-types`.
 */
export class WorkerCatalog {
  readonly #o: WorkerCatalogOptions;
  readonly #types: Readonly<Record<string, WorkerTypeDescriptor>>;
  #entries: InstalledWorkerType[] = [];
  #refreshedAt = 0;
  #refreshing: Promise<InstalledWorkerType[]> | undefined;
  readonly #created = new Map<string, string>();

  constructor(options: WorkerCatalogOptions) {
    this.#o = options;
    this.#types = options.types ?? WORKER_TYPES;
  }

  /** The built-in types and those installed from packages. */
  #all(): Readonly<Record<string, WorkerTypeDescriptor>> {
    const installed = this.#o.installed?.() ?? {};
    return Object.keys(installed).length === 0 ? this.#types : { ...installed, ...this.#types };
  }

  /** The catalog as last taken (empty before the first refresh). */
  list(): InstalledWorkerType[] {
    return this.#entries;
  }

  /** The catalog, taken again when older than a minute (or when `force`). */
  async current(force = false): Promise<InstalledWorkerType[]> {
    if (!force && this.#refreshedAt > 0 && Date.now() - this.#refreshedAt < REFRESH_MS) return this.#entries;
    return this.refresh();
  }

  /** Looks for every type's engines again and rewrites the catalog's files. Concurrent calls share one. */
  refresh(): Promise<InstalledWorkerType[]> {
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<InstalledWorkerType[]> {
    const engines = await this.#o.findEngines().catch((err: unknown) => {
      this.#o.log.warn({ err: (err as Error).message }, "could not list the engines on this machine");
      return [] as EngineBinary[];
    });
    const now = new Date().toISOString();
    const before = new Map(this.#entries.map((e) => [e.id, e]));
    const entries = Object.values(this.#all()).map((t) => {
      const described = describeInstalled(t, engines, this.#o.version, now);
      // an installed package: its version, trust and source
      const e = "package" in t && t.package !== undefined ? { ...described, package: t.package } : described;
      // unchanged, it keeps the time it last changed: the heartbeat carries the same catalog
      const was = before.get(e.id);
      return was !== undefined && JSON.stringify(strip([was])) === JSON.stringify(strip([e])) ? was : e;
    });
    const changed = JSON.stringify(strip(entries)) !== JSON.stringify(strip(this.#entries));
    this.#entries = entries;
    this.#refreshedAt = Date.now();
    if (changed) await this.#write(entries);
    return entries;
  }

  async #write(entries: InstalledWorkerType[]): Promise<void> {
    for (const e of entries) {
      const created = this.#created.get(e.id) ?? e.updated_at ?? new Date().toISOString();
      this.#created.set(e.id, created);
      const { id, description, version, status, error, ...rest } = e;
      try {
        await writeMetadataFile(join(this.#o.dir, id), {
          artifact: {
            id,
            name: description,
            version,
            size_bytes: 0,
            source_url: "",
            status,
            kind: "worker",
            ...(error === undefined ? {} : { error }),
            ...rest,
          },
          created_at: created,
          updated_at: e.updated_at ?? created,
        });
      } catch (err) {
        this.#o.log.warn({ worker_type: id, err: (err as Error).message }, "could not write the worker catalog entry");
      }
    }
  }

  /**
   * The type and engine a spawn on a kind of device starts with.
   * @throws UnknownWorkerTypeError (400) for a type this hive does not know, listing the ones it
   *   does; RbeeError 400 `worker_type_unsupported_device` for a device kind it does not run on
   *   here; 409 `worker_type_not_installed` when its engine is missing or broken (with how to
   *   install it).
   */
  async resolve(typeId: string, device: Pick<Device, "kind" | "simulated">): Promise<ResolvedWorkerType> {
    const deviceKind = device.kind;
    const all = this.#all();
    const descriptor = Object.hasOwn(all, typeId) ? all[typeId] : undefined;
    if (descriptor === undefined) throw new UnknownWorkerTypeError(typeId, Object.keys(all), "this hive has");
    let entry = (await this.current()).find((e) => e.id === typeId && sameVersion(e, descriptor));
    // an engine may have been built or added since the last look
    if (entry?.status !== "Available") entry = (await this.refresh()).find((e) => e.id === typeId);
    if (entry === undefined || entry.status !== "Available") {
      throw new RbeeError(
        `worker type '${typeId}' cannot run on this machine: ${entry?.error ?? "it is not installed"}`,
        { statusCode: 409, code: "worker_type_not_installed", param: "worker_type" },
      );
    }
    // a declared (simulated) device runs its workers on the CPU: any kind of the type will do
    const kinds = device.simulated === true ? entry.device_kinds : (entry.runs_on ?? entry.device_kinds);
    if (!kinds.includes(deviceKind)) {
      const kinds = (entry.runs_on ?? entry.device_kinds).join(", ") || "none";
      throw new RbeeError(
        `worker type '${typeId}' does not run on ${deviceKind} devices on this machine (it runs on: ${kinds}); choose another device or type`,
        { statusCode: 400, code: "worker_type_unsupported_device", param: "device" },
      );
    }
    const engines: Record<string, string> = {};
    if (descriptor.engine !== undefined) {
      const best =
        pickEngine(entry.engines, deviceKind) ?? (device.simulated ? pickEngine(entry.engines, "cpu") : undefined);
      if (best !== undefined) engines[descriptor.engine] = best.path;
    }
    return { descriptor, engines };
  }
}

/** Whether a catalog entry was taken of this descriptor (an installed package's version may have changed since). */
function sameVersion(e: InstalledWorkerType, d: WorkerTypeDescriptor): boolean {
  const pkg = (d as { package?: { version?: string } }).package;
  return pkg === undefined || (e as { package?: { version?: string } }).package?.version === pkg.version;
}

/** The entry without its timestamp, to tell whether anything changed. */
function strip(entries: InstalledWorkerType[]): unknown {
  return entries.map(({ updated_at: _, ...rest }) => rest);
}

/** The working engine build for a device kind: one built for it (Vulkan for ROCm), else one whose backend is unknown. */
function pickEngine(engines: readonly EngineBinary[], kind: DeviceKind): EngineBinary | undefined {
  const ok = engines.filter((e) => e.status === "ok");
  const backend = kind === "rocm" && !ok.some((e) => e.backend === "rocm") ? "vulkan" : kind;
  return ok.find((e) => e.backend === backend) ?? ok.find((e) => e.backend === undefined);
}

/** The device kinds a set of working builds covers: a build for a backend, or an unknown one (covers all). */
function kindsCovered(type: WorkerTypeDescriptor, builds: readonly EngineBinary[]): DeviceKind[] {
  const ok = builds.filter((e) => e.status === "ok");
  if (ok.some((e) => e.backend === undefined)) return [...type.deviceKinds];
  const backends = new Set(ok.map((e) => e.backend));
  // ROCm GPUs run llama.cpp through its Vulkan build
  if (backends.has("vulkan")) backends.add("rocm");
  return type.deviceKinds.filter((k) => backends.has(k));
}

/** A type as this machine has it: its engines, the device kinds they cover, and why it cannot run if so. */
export function describeInstalled(
  type: WorkerTypeDescriptor,
  machineEngines: readonly EngineBinary[],
  version: string,
  now: string,
): InstalledWorkerType {
  const base = {
    id: type.id,
    description: type.description,
    capabilities: [...type.capabilities],
    device_kinds: [...type.deviceKinds],
    artifact: type.artifact,
    updated_at: now,
  };
  const engines =
    type.engine !== undefined ? machineEngines.filter((e) => e.id === type.engine) : (type.bundledEngines?.() ?? []);
  const working = engines.filter((e) => e.status === "ok");
  const needsOne = type.engine !== undefined || type.bundledEngines !== undefined;
  if (needsOne && working.length === 0 && type.engineOptional === true) {
    // an adapter that attaches to a running engine needs no binary here
    return { ...base, version, status: "Available", engines, runs_on: [...type.deviceKinds] };
  }
  if (needsOne && working.length === 0) {
    const broken = engines.map((e) => `${e.path || e.id}: ${e.error ?? "broken"}`);
    const missing =
      type.engine !== undefined
        ? `${type.engine} was not found on this machine${broken.length > 0 ? ` (broken: ${broken.join("; ")})` : ""}; ${
            type.installHint ??
            `build it with \`rbee engine build\`, or register yours with \`rbee engine add ${type.engine} <path>\``
          }`
        : broken.join("; ") || `${type.id} has nothing to run with on this machine`;
    return { ...base, version, status: "Failed", engines, runs_on: [], error: missing };
  }
  const runsOn = needsOne ? kindsCovered(type, working) : [...type.deviceKinds];
  const engineVersion = working.find((e) => e.version !== undefined)?.version;
  return { ...base, version: engineVersion ?? version, status: "Available", engines, runs_on: runsOn };
}
